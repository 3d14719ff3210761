"""Random-policy rollouts of a batch of environments, compiled as one scan (tests, benchmarks)."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp


class Rollout(NamedTuple):
    """Transitions of a [T steps, B envs] random-policy rollout (no resets inside).

    obs, next_obs: [T, B, obs_dim]; action: [T, B, A] (uniform in [-1, 1], or wider when
    `action_scale` > 1 to exercise clipping); reward, done, truncation: [T, B] float32;
    alive: [T, B] 1.0 where no earlier step of that env was done (transitions to keep).
    """

    obs: jax.Array
    action: jax.Array
    next_obs: jax.Array
    reward: jax.Array
    done: jax.Array
    truncation: jax.Array
    alive: jax.Array


def make_random_rollout(
    env: Any, batch_size: int, num_steps: int, action_scale: float = 1.0
) -> Callable[[jax.Array], tuple[Any, Rollout]]:
    """Returns `rollout(key) -> (final_state, Rollout)`; jit it (one compile, reuse it).

    `reset` and `step` are vmapped over `batch_size` envs; the `num_steps` steps are a `lax.scan`.
    """

    def rollout(key: jax.Array) -> tuple[Any, Rollout]:
        reset_key, act_key = jax.random.split(key)
        state = jax.vmap(env.reset)(jax.random.split(reset_key, batch_size))

        def one(carry, k):
            state, alive = carry
            action = jax.random.uniform(
                k, (batch_size, env.action_size), minval=-action_scale, maxval=action_scale
            )
            nstate = jax.vmap(env.step)(state, action)
            out = Rollout(
                obs=state.obs, action=action, next_obs=nstate.obs, reward=nstate.reward,
                done=nstate.done,
                truncation=nstate.info.get("truncation", jnp.zeros_like(nstate.done)),
                alive=alive,
            )
            return (nstate, alive * (1.0 - nstate.done)), out

        init = (state, jnp.ones((batch_size,), jnp.float32))
        (state, _), traj = jax.lax.scan(one, init, jax.random.split(act_key, num_steps))
        return state, traj

    return rollout
