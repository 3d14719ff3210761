"""Running models forward: one home for planning objectives, propagation and imagination.

    transition   the one reward contract (per transition, vmapped) and termination rule
                 (soft/hard), and the shared accumulation of returns and survival
    modes        propagation modes as small layout functions behind a table (ts1, tsinf,
                 expectation, random_model)
    propagation  `PropagationConfig`, `propagate` (candidates x particles x members x horizon)
    objectives   `make_model_objective`, `make_env_objective`: objective(actions) -> returns
    problem      `PlanningProblem(objective, x0, step, reward)` from a model or the true env
    imagine      `imagine(model, model_state, policy, policy_params, starts, H, key)`

Everything here reaches a model only through the dynamics-model protocol
(`mbjax.models.base`), so any model implementing it plans and imagines unchanged.
"""

from mbjax.rollout.imagine import Imagined, imagine
from mbjax.rollout.modes import MODES, Layout
from mbjax.rollout.objectives import (
    Objective,
    env_returns,
    make_env_objective,
    make_model_objective,
)
from mbjax.rollout.problem import PlanningProblem, make_env_problem, make_model_problem
from mbjax.rollout.propagation import (
    PROPAGATION_MODES,
    RISK_MEASURES,
    PropagationConfig,
    PropagationResult,
    aggregate_returns,
    propagate,
)
from mbjax.rollout.transition import (
    TERMINATION_RULES,
    RewardFn,
    TerminationFn,
    make_model_transition,
    per_transition,
)

__all__ = [
    "Imagined", "Layout", "MODES", "Objective", "PROPAGATION_MODES", "PlanningProblem",
    "PropagationConfig", "PropagationResult", "RISK_MEASURES", "RewardFn", "TERMINATION_RULES",
    "TerminationFn", "aggregate_returns", "env_returns", "imagine",
    "make_env_objective", "make_env_problem", "make_model_objective", "make_model_problem",
    "make_model_transition", "per_transition", "propagate",
]
