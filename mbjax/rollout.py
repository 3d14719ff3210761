"""Objectives for planners: the bridge between models/environments and planners.

A planner sees only `objective(actions: [N, H, A]) -> returns: [N]`. This module builds such
objectives from the true environment (ground-truth MPC) and, below, from a learned ensemble.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

Objective = Callable[[jax.Array], jax.Array]


def make_env_objective(env: Any, discount: float = 1.0) -> Callable[[Any], Objective]:
    """Ground-truth objective: the environment itself is the model, vmapped over candidates.

    Returns `objective_for(env_state) -> objective`, where `objective(actions: [N, H, A]) -> [N]`
    is the (discounted) sum of true rewards from `env_state`. Rewards after a termination are
    masked; a time-limit truncation inside the horizon is not a termination and is ignored.
    """

    def objective_for(env_state: Any) -> Objective:
        def one_candidate(actions: jax.Array) -> jax.Array:
            def step(carry, action):
                state, alive, ret, scale = carry
                state = env.step(state, action)
                ret = ret + alive * scale * state.reward
                truncation = state.info.get("truncation", jnp.zeros_like(state.done))
                alive = alive * (1.0 - state.done * (1.0 - truncation))
                return (state, alive, ret, scale * discount), None

            init = (env_state, jnp.ones(()), jnp.zeros(()), jnp.ones(()))
            (_, _, ret, _), _ = jax.lax.scan(step, init, actions)
            return ret

        return jax.vmap(one_candidate)

    return objective_for
