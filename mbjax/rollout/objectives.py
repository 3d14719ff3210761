"""Objectives for sampling planners: `objective(actions [N, H, A]) -> returns [N]`, from the
true environment (ground-truth MPC) or from a learned model (`propagation.propagate`)."""

from __future__ import annotations

from typing import Any, Callable

import jax

from mbjax import acting
from mbjax.rollout.propagation import PropagationConfig, check_setup, propagate
from mbjax.rollout.transition import (
    RewardFn,
    TerminationFn,
    accumulate,
    init_returns,
)

Objective = Callable[[jax.Array], jax.Array]


def env_returns(env: Any, env_state: Any, actions: jax.Array, discount: Any = 1.0) -> jax.Array:
    """(Discounted) true return of one action sequence [H, A] from `env_state`.

    Rewards after a termination are masked; a time-limit truncation inside the horizon is not a
    termination and is ignored.
    """

    def step(carry, action):
        state, returns = carry
        state = env.step(state, action)
        return (state, accumulate(returns, state.reward, acting.termination(state), discount)), None

    (_, returns), _ = jax.lax.scan(step, (env_state, init_returns(())), actions)
    return returns.total


def make_env_objective(env: Any, discount: float = 1.0) -> Callable[[Any], Objective]:
    """Ground-truth objective: the environment itself is the model, vmapped over candidates.

    Returns `objective_for(env_state) -> objective`, `objective(actions [N, H, A]) -> [N]`.
    """

    def objective_for(env_state: Any) -> Objective:
        return jax.vmap(lambda actions: env_returns(env, env_state, actions, discount))

    return objective_for


def make_model_objective(
    model: Any,
    config: PropagationConfig,
    reward_fn: RewardFn | None = None,
    termination_fn: TerminationFn | None = None,
    terminal_value: Callable[[Any, jax.Array], jax.Array] | None = None,
) -> Callable[..., Objective]:
    """Objective factory over a learned model (any `mbjax.models.base` protocol model).

    Returns `objective_for(model_state, obs [S], key, value_params=None) -> objective` with
    `objective(actions [N, H, A]) -> values [N]` (see `propagate`). The key is fixed for the
    objective's lifetime, so every planner iteration within one plan call sees the same noise
    (common random numbers: candidates are compared under the same sampled futures).
    terminal_value(value_params, x [..., S]) -> [...]: a learned value of the horizon's final
    states, added to the returns (`propagate`'s terminal_value) with `value_params`.
    Configuration errors (particles vs members, missing reward) raise here, before tracing.
    """
    check_setup(model, config, reward_fn)

    def objective_for(model_state: Any, obs: jax.Array, key: jax.Array,
                      value_params: Any = None) -> Objective:
        tail = None if terminal_value is None else (lambda x: terminal_value(value_params, x))

        def objective(actions: jax.Array) -> jax.Array:
            return propagate(
                model, config, model_state, obs, actions, key, reward_fn, termination_fn,
                terminal_value=tail,
            ).values

        return objective

    return objective_for
