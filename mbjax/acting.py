"""Acting in environments: the one place where an env step becomes a `Transition`.

Environments follow Brax's `Env` protocol without auto-reset (every `mbjax.envs.make` env, or a
Brax env in Brax's `EpisodeWrapper`): `state.done` is 1 on termination OR time-limit truncation
and `state.info["truncation"]` (when present) is 1 only for the time limit, so

    terminated = done * (1 - truncation),  truncated = done * truncation.

Everything here is pure and jittable, without Python loops over envs or steps:

- `step(env, state, action) -> (next_state, Transition)`: one env (vmap it for a batch).
- Auto-reset batches (MBPO, SAC): `reset_batch(env, key, num_envs) -> EnvBatch`,
  `step_batch(env, batch, action [B, A], key) -> (EnvBatch, Transition [B])`. Finished envs
  restart from fresh reset keys; the stored `next_obs` is the true last observation, so truncated
  transitions still bootstrap. `EnvBatch` tracks running and last-finished episode returns.
- Masked fixed-length episodes (PETS, evaluation): `start_episode(env, key) -> Episode`,
  `episode_step(env, episode, action) -> (Episode, EpisodeStep)`. An episode ends at its first
  `done`; later steps are marked invalid and add no reward (`where`, not a product: an env stepped
  past its end may return NaN).
- `evaluate(env, act_fn, params, key, num_episodes, num_steps) -> returns [num_episodes]`;
  `policy_return(env, init_carry, policy, key, num_steps) -> return []` for the carry-based
  policies of `Algorithm.make_policy`.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from mbjax.types import Transition

# act_fn(params, obs [N, obs_dim], key) -> action [N, A]
ActFn = Callable[[Any, jax.Array, jax.Array], jax.Array]


# ----------------------------------------------------------------------------- one step


def truncation(state: Any) -> jax.Array:
    """`state.info["truncation"]` as float32 (zeros shaped like `state.done` when absent)."""
    info = getattr(state, "info", None) or {}
    if "truncation" in info:
        return jnp.asarray(info["truncation"], jnp.float32)
    return jnp.zeros(jnp.shape(state.done), jnp.float32)


def termination(state: Any) -> jax.Array:
    """1.0 where the step into `state` terminated (done, and not a time-limit truncation)."""
    return jnp.asarray(state.done, jnp.float32) * (1.0 - truncation(state))


def make_transition(state: Any, action: jax.Array, next_state: Any) -> Transition:
    """The transition state -action-> next_state, with termination and truncation kept apart.

    Works on any leading shape: obs [..., obs_dim], action [..., A] -> Transition leaves [...].
    """
    done = jnp.asarray(next_state.done, jnp.float32)
    return Transition(
        obs=state.obs, action=action, reward=next_state.reward, next_obs=next_state.obs,
        terminated=termination(next_state), truncated=done * truncation(next_state),
    )


def step(env: Any, state: Any, action: jax.Array) -> tuple[Any, Transition]:
    """Steps one env (unbatched; vmap for batches): returns (next_state, Transition)."""
    next_state = env.step(state, action)
    return next_state, make_transition(state, action, next_state)


def empty_transition(
    obs_size: int | tuple[int, ...], action_size: int, obs_dtype: Any = jnp.float32
) -> Transition:
    """A single all-zero Transition: the example item of a replay buffer.

    obs_size: an int (vector obs [obs_size]) or a shape (e.g. images (H, W, C), as a pixel env's
    `observation_size` gives it); obs_dtype: the dtype obs/next_obs are stored in (uint8 for
    images: 4x less memory than float32; `replay.add` casts to the buffer's dtype). Everything
    else is float32.
    """
    zero = jnp.zeros((), jnp.float32)
    shape = tuple(obs_size) if isinstance(obs_size, (tuple, list)) else (obs_size,)
    return Transition(
        obs=jnp.zeros(shape, obs_dtype), action=jnp.zeros((action_size,), jnp.float32),
        reward=zero, next_obs=jnp.zeros(shape, obs_dtype), terminated=zero, truncated=zero,
    )


def random_actions(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """Uniform actions in [-1, 1] of `shape` (e.g. [B, A])."""
    return jax.random.uniform(key, shape, minval=-1.0, maxval=1.0)


# ----------------------------------------------------------------------------- auto-reset batch


class EnvBatch(NamedTuple):
    """A batch of B auto-resetting envs.

    state: env state, leaves [B, ...]; episode_return: [B] return of each running episode so far;
    last_return: [B] return of each env's last finished episode (NaN before the first).
    """

    state: Any
    episode_return: jax.Array
    last_return: jax.Array


def _where_rows(mask: jax.Array, new: Any, old: Any) -> Any:
    """Per-row select over pytrees with leading [B]: `new` where mask [B] else `old`."""

    def select(n, o):
        return jnp.where(jnp.reshape(mask, mask.shape + (1,) * (n.ndim - mask.ndim)), n, o)

    return jax.tree_util.tree_map(select, new, old)


def reset_batch(env: Any, key: jax.Array, num_envs: int) -> EnvBatch:
    """`num_envs` fresh envs from `jax.random.split(key, num_envs)`."""
    state = jax.vmap(env.reset)(jax.random.split(key, num_envs))
    return EnvBatch(
        state=state,
        episode_return=jnp.zeros((num_envs,), jnp.float32),
        last_return=jnp.full((num_envs,), jnp.nan, jnp.float32),
    )


def step_batch(
    env: Any, batch: EnvBatch, action: jax.Array, key: jax.Array
) -> tuple[EnvBatch, Transition]:
    """Steps all B envs with action [B, A]; envs that finished restart (keys: split(key, B)).

    Returns the new batch and the B transitions, whose next_obs are the true last observations
    (not the reset ones). The reset is skipped when no env finished (under vmap, a select).
    """
    num_envs = action.shape[0]
    next_state, transitions = jax.vmap(functools.partial(step, env))(batch.state, action)
    finished = jnp.asarray(next_state.done, jnp.float32) > 0
    ep_return = batch.episode_return + next_state.reward
    state = jax.lax.cond(
        jnp.any(finished),
        lambda s: _where_rows(finished, jax.vmap(env.reset)(jax.random.split(key, num_envs)), s),
        lambda s: s,
        next_state,
    )
    new_batch = EnvBatch(
        state=state,
        episode_return=jnp.where(finished, 0.0, ep_return),
        last_return=jnp.where(finished, ep_return, batch.last_return),
    )
    return new_batch, transitions


def mean_last_return(batch: EnvBatch) -> jax.Array:
    """Mean over envs of the last finished episode's return ([]; NaN if none finished yet)."""
    seen = ~jnp.isnan(batch.last_return)
    total = jnp.sum(jnp.where(seen, batch.last_return, 0.0))
    return jnp.where(jnp.any(seen), total / jnp.maximum(jnp.sum(seen), 1), jnp.nan)


# ----------------------------------------------------------------------------- masked episodes


class Episode(NamedTuple):
    """One fixed-length episode in progress (add a leading axis by vmapping for batches).

    state: env state; alive: [] 1.0 until the episode's first done, then 0.0;
    episode_return: [] sum of the rewards while alive; length: [] steps taken while alive.
    """

    state: Any
    alive: jax.Array
    episode_return: jax.Array
    length: jax.Array


class EpisodeStep(NamedTuple):
    """What one masked step yields: the transition and `valid` (1.0 while the episode ran)."""

    transition: Transition
    valid: jax.Array


def start_episode(env: Any, key: jax.Array) -> Episode:
    """A fresh episode of one env."""
    state = env.reset(key)
    zero = jnp.zeros(jnp.shape(state.done), jnp.float32)
    return Episode(state=state, alive=zero + 1.0, episode_return=zero, length=zero)


def episode_step(env: Any, episode: Episode, action: jax.Array) -> tuple[Episode, EpisodeStep]:
    """One masked step: (episode, EpisodeStep(transition, valid)).

    Steps after the episode's first done (termination or time limit) are invalid and add no
    reward or length; `where` keeps a NaN from an env stepped past its end out of the return.
    """
    next_state, transition = step(env, episode.state, action)
    alive = episode.alive > 0
    done = jnp.asarray(next_state.done, jnp.float32) > 0
    new = Episode(
        state=next_state,
        alive=jnp.where(alive & ~done, 1.0, 0.0).astype(jnp.float32),
        episode_return=episode.episode_return + jnp.where(alive, next_state.reward, 0.0),
        length=episode.length + episode.alive,
    )
    return new, EpisodeStep(transition=transition, valid=episode.alive)


def evaluate(
    env: Any, act_fn: ActFn, params: Any, key: jax.Array, num_episodes: int, num_steps: int
) -> jax.Array:
    """Undiscounted returns [num_episodes] of `act_fn` over episodes of at most `num_steps` steps.

    Episodes start from `jax.random.split(key, num_episodes)`; act_fn(params, obs [N, obs_dim],
    key) -> action [N, A] receives `key` at every step (deterministic policies ignore it).
    """
    episodes = jax.vmap(functools.partial(start_episode, env))(
        jax.random.split(key, num_episodes)
    )
    v_step = jax.vmap(functools.partial(episode_step, env))

    def one(ep: Episode, _):
        ep, _ = v_step(ep, act_fn(params, ep.state.obs, key))
        return ep, None

    episodes, _ = jax.lax.scan(one, episodes, None, length=num_steps)
    return episodes.episode_return


def random_episode(env: Any, k_reset: jax.Array, k_act: jax.Array,
                   num_steps: int) -> tuple[Episode, EpisodeStep]:
    """One masked episode of uniform random actions from a reset with `k_reset`, the actions
    [num_steps, A] drawn with `k_act`: (final Episode, EpisodeStep [num_steps])."""
    actions = random_actions(k_act, (num_steps, env.action_size))
    return jax.lax.scan(lambda ep, u: episode_step(env, ep, u), start_episode(env, k_reset),
                        actions)


def policy_episode(
    env: Any, init_carry: Callable[[jax.Array], Any], policy: Callable[..., tuple[Any, Any, Any]],
    key: jax.Array, num_steps: int, observe: Callable[[Episode], Any] | None = None,
) -> tuple[Episode, Any]:
    """One masked episode (at most `num_steps` steps) of a carry-based policy: (final Episode,
    observe(episode) at the reset and after each step, stacked to [num_steps + 1, ...]; None
    without `observe`).

    (init_carry, policy) is what an algorithm's `make_policy` returns: init_carry(key) -> carry,
    policy(carry, obs [obs_dim], key) -> (carry, action [A], extras). The keys are split the
    same way whatever `observe` is, so a rendered episode is the very one `policy_return`
    scores.
    """
    k_reset, k_carry, k_run = jax.random.split(key, 3)

    def one(carry, k):
        episode, policy_carry = carry
        policy_carry, action, _ = policy(policy_carry, episode.state.obs, k)
        episode, _ = episode_step(env, episode, action)
        return (episode, policy_carry), None if observe is None else observe(episode)

    start = start_episode(env, k_reset)
    (episode, _), observed = jax.lax.scan(one, (start, init_carry(k_carry)),
                                          jax.random.split(k_run, num_steps))
    if observe is not None:
        observed = jax.tree_util.tree_map(lambda first, rest: jnp.concatenate([first[None], rest]),
                                          observe(start), observed)
    return episode, observed


def policy_return(
    env: Any, init_carry: Callable[[jax.Array], Any], policy: Callable[..., tuple[Any, Any, Any]],
    key: jax.Array, num_steps: int,
) -> jax.Array:
    """Undiscounted return [] of one episode (at most `num_steps` steps) of a carry-based policy
    (`policy_episode`). vmap over keys for more."""
    return policy_episode(env, init_carry, policy, key, num_steps)[0].episode_return
