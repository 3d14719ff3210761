"""MBPO's branched model rollouts, its rollout-length schedule and the model-buffer sampler.

Shapes: N rollouts (rows), H_max = the schedule's longest length (static), K elites.
The current length is a traced scalar: steps past it are computed but not stored, so a
changing length never recompiles.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from mbjax import replay
from mbjax.models import Ensemble, ModelState, select_members
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
    model: Ensemble,
    act: Callable[[jax.Array, jax.Array], jax.Array],
    max_length: int,
    reward_fn: Callable | None,
    termination_fn: Callable | None,
) -> Callable[..., tuple[Transition, jax.Array]]:
    """Returns `rollout(model_state, policy_params, obs0 [N, o], length, key) -> (transitions
    [H_max, N, ...], valid [H_max, N])`.

    act(policy_params, obs [N, o], key) -> action [N, A] (the stochastic SAC policy).
    Each step every row goes through a uniformly drawn elite: rows are shuffled and split evenly
    over the K elites (N must be a multiple of K), so one step costs N member evaluations rather
    than N x E. reward_fn / termination_fn: known functions (obs, action, next_obs) -> [N], or
    None to use the model's learned heads (termination where its probability > 0.5).
    A row stops after a predicted termination; steps at or past `length` are invalid.
    """

    def rollout(model_state: ModelState, policy_params, obs0: jax.Array, length: jax.Array,
                key: jax.Array) -> tuple[Transition, jax.Array]:
        n = obs0.shape[0]
        k_elites = model_state.elites.shape[0]
        if n % k_elites:
            raise ValueError(f"model rollouts: {n} rows must be a multiple of {k_elites} elites")
        elite_params = select_members(model_state.params, model_state.elites)

        def step(carry, xs):
            obs, alive = carry
            h, k = xs
            k_perm, k_act, k_noise = jax.random.split(k, 3)
            perm = jax.random.permutation(k_perm, n)
            obs, alive = obs[perm], alive[perm]
            action = act(policy_params, obs, k_act)
            out = model.step_members(
                elite_params, model_state.normalizer,
                obs.reshape(k_elites, n // k_elites, -1),
                action.reshape(k_elites, n // k_elites, -1), k_noise,
            )
            next_obs = out.next_obs.reshape(n, -1)
            if reward_fn is None:
                reward = out.reward.reshape(n)
            else:
                reward = reward_fn(obs, action, next_obs)
            if termination_fn is None:
                term = (out.termination_prob.reshape(n) > 0.5).astype(jnp.float32)
            else:
                term = termination_fn(obs, action, next_obs).astype(jnp.float32)
            valid = alive * (h < length).astype(jnp.float32)
            transition = Transition(obs=obs, action=action, reward=reward, next_obs=next_obs,
                                    terminated=term)
            return (next_obs, alive * (1.0 - term)), (transition, valid)

        xs = (jnp.arange(max_length), jax.random.split(key, max_length))
        _, (transitions, valid) = jax.lax.scan(step, (obs0, jnp.ones((n,), jnp.float32)), xs)
        return transitions, valid

    return rollout
