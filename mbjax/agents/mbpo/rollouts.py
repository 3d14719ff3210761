"""MBPO's branched model rollouts, its rollout-length schedule and the model-buffer sampler.

Shapes: N rollouts (rows), H_max = the schedule's longest length (static), K elites.
The current length is a traced scalar: steps past it are computed but not stored, so a
changing length never recompiles.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from mbjax import replay
from mbjax.rollout import imagine
from mbjax.types import Transition


def rollout_length(epoch: jax.Array, schedule: tuple[int, int, int, int]) -> jax.Array:
    """MBPO's schedule [epoch_a, epoch_b, len_a, len_b] at `epoch` (int32 scalar, traced ok).

    len_a up to epoch_a, linear to len_b at epoch_b, len_b after; truncated to an int as MBPO does.
    """
    a, b, la, lb = schedule
    frac = jnp.clip((epoch.astype(jnp.float32) - a) / (b - a), 0.0, 1.0)
    return (la + frac * (lb - la)).astype(jnp.int32)


def sample_recent(buffer: replay.ReplayBuffer, key: jax.Array, batch_size: int,
                  window: jax.Array) -> Transition:
    """Uniform sample from the newest `min(window, size)` items of a ring buffer: [batch, ...].

    Lets a fixed-capacity buffer (sized for the longest rollouts) behave like MBPO's model pool,
    whose size follows the current rollout length.
    """
    n = jnp.maximum(jnp.minimum(window, buffer.size), 1)
    back = jax.random.randint(key, (batch_size,), 0, n)
    idx = (buffer.insert_pos - 1 - back) % buffer.capacity
    return jax.tree_util.tree_map(lambda d: d[idx], buffer.data)


def make_model_rollout(
    model: Any,
    act: Callable[[Any, jax.Array, jax.Array], jax.Array],
    max_length: int,
    reward_fn: Callable | None,
    termination_fn: Callable | None,
) -> Callable[..., tuple[Transition, jax.Array]]:
    """Returns `rollout(model_state, policy_params, obs0 [N, o], length, key) -> (transitions
    [H_max, N, ...], valid [H_max, N])`: `mbjax.rollout.imagine` with the stochastic policy
    `act(policy_params, obs [N, o], key) -> action [N, A]`, each row through a uniformly drawn
    elite per step, terminations applied hard (a row stops where the learned termination
    probability > 0.5, or where termination_fn says so), as MBPO stores them.
    reward_fn / termination_fn: known per-transition functions (obs, action, next_obs), or None
    for the model's learned heads. Steps after a termination, or at or past the traced
    `length`, are invalid.
    """

    def rollout(model_state: Any, policy_params: Any, obs0: jax.Array, length: jax.Array,
                key: jax.Array) -> tuple[Transition, jax.Array]:
        im = imagine(
            model, model_state, act, policy_params, obs0, max_length, key,
            reward_fn=reward_fn, termination_fn=termination_fn, termination="hard",
            elites_only=True,
        )
        transitions = Transition(
            obs=im.obs[:-1], action=im.actions, reward=im.rewards, next_obs=im.obs[1:],
            terminated=im.dones, truncated=jnp.zeros_like(im.dones),
        )
        valid = im.weights * (jnp.arange(max_length) < length)[:, None]
        return transitions, valid

    return rollout
