"""Planning problems: what a planner receives.

A sampling planner needs only `objective(actions [N, H, A]) -> returns [N]`. LQR-type planners
(LQR, iLQR, DDP) also need the dynamics and the per-step reward along a trajectory, so a problem
exposes those too:

    problem.objective(actions [N, H, A]) -> returns [N]
    problem.x0                          the start: obs [S] for a model, an env State for the env
    problem.step(x, action [A]) -> x'   deterministic dynamics of ONE state (differentiable for
                                        a model or a pure-JAX env)
    problem.reward(x, action, x') -> [] the per-step reward (a cost is its negative)

Planners call `objective_of(problem)` (`mbjax.planners.base`), so a bare objective callable
still works wherever a problem is expected.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from mbjax.rollout.objectives import Objective, make_env_objective, make_model_objective
from mbjax.rollout.propagation import PropagationConfig
from mbjax.rollout.transition import RewardFn, TerminationFn


class PlanningProblem(NamedTuple):
    """See the module docstring."""

    objective: Objective
    x0: Any
    step: Callable[[Any, jax.Array], Any]
    reward: Callable[[Any, jax.Array, Any], jax.Array]


def make_model_problem(
    model: Any,
    config: PropagationConfig,
    reward_fn: RewardFn | None = None,
    termination_fn: TerminationFn | None = None,
) -> Callable[[Any, jax.Array, jax.Array], PlanningProblem]:
    """`problem_for(model_state, obs [S], key) -> PlanningProblem` over a learned model.

    objective: `propagate` with `config` (particles, mode, risk). step: the mean prediction
    averaged over the members used (all, or the elites with `config.elites_only`), no noise.
    reward: `reward_fn` where given, else the same members' mean reward head.
    """
    objective_for = make_model_objective(model, config, reward_fn, termination_fn)
    m = model.num_elites if config.elites_only else model.num_members

    def problem_for(model_state: Any, obs: jax.Array, key: jax.Array) -> PlanningProblem:
        members = model.elites(model_state) if config.elites_only else None

        def mean_step(x: jax.Array, action: jax.Array):
            xb = jnp.broadcast_to(x, (m, 1) + x.shape)
            ab = jnp.broadcast_to(action, (m, 1) + action.shape)
            return model.step(model_state, xb, ab, None, members)

        def reward(x, action, next_x):
            if reward_fn is not None:
                return reward_fn(x, action, next_x)
            return mean_step(x, action).reward.mean()

        return PlanningProblem(
            objective=objective_for(model_state, obs, key),
            x0=obs,
            step=lambda x, action: mean_step(x, action).next_obs.mean(axis=(0, 1)),
            reward=reward,
        )

    return problem_for


def make_env_problem(env: Any, discount: float = 1.0) -> Callable[[Any], PlanningProblem]:
    """`problem_for(env_state) -> PlanningProblem` with the true environment as the model:
    x is an env State, step is `env.step`, reward reads the stepped state's reward."""
    objective_for = make_env_objective(env, discount)

    def problem_for(env_state: Any) -> PlanningProblem:
        return PlanningProblem(
            objective=objective_for(env_state),
            x0=env_state,
            step=env.step,
            reward=lambda state, action, next_state: next_state.reward,
        )

    return problem_for
