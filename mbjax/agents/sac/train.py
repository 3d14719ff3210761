"""A small, fully compiled SAC training loop on a batch of environments ("SAC alone").

    trainer = make_train_sac(env, SACConfig(), num_env_steps=20_000, num_envs=4)
    state, metrics = jax.jit(trainer.train)(key)          # whole run, one program (vmap over seeds)
    # or chunk by chunk, with host code between chunks:
    ts = trainer.init(key); ts, m = jax.jit(trainer.run_chunk)(ts)

Environments follow Brax's `Env` protocol without auto-reset (e.g. wrapped in Brax's
`EpisodeWrapper`): `state.done` includes time-limit truncation and `state.info['truncation']`
marks it, so termination = done * (1 - truncation). Finished envs are reset with fresh keys inside
the loop, and the stored `next_obs` is the true last observation, so truncated transitions still
bootstrap correctly. (An env that auto-resets itself also works, but then the `next_obs` of a
truncated transition is the next episode's first observation.)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

from mbjax import replay
from mbjax.agents.sac.config import SACConfig
from mbjax.agents.sac.learner import SAC, SACState, make_sac
from mbjax.types import Transition


@struct.dataclass
class SACTrainState:
    """agent: SACState; buffer: ReplayBuffer of Transition; env_state: leaves [B, ...]."""

    agent: SACState
    buffer: replay.ReplayBuffer
    env_state: Any
    env_steps: jax.Array  # [] int32, transitions collected so far (all envs)
    key: jax.Array


class TrainSAC(NamedTuple):
    """init(key) -> SACTrainState; run_chunk(ts) -> (ts, metrics);
    evaluate(agent, key) -> returns [num_eval_envs]; train(key) -> (ts, metrics)."""

    init: Callable[[jax.Array], SACTrainState]
    run_chunk: Callable[[SACTrainState], tuple[SACTrainState, dict[str, jax.Array]]]
    evaluate: Callable[[SACState, jax.Array], jax.Array]
    train: Callable[[jax.Array], tuple[SACTrainState, dict[str, jax.Array]]]
    sac: SAC
    num_chunks: int
    env_steps_per_chunk: int


@dataclasses.dataclass(frozen=True)
class _LoopSettings:
    num_env_steps: int
    num_envs: int
    num_evals: int
    num_eval_envs: int
    eval_episode_length: int
    replay_capacity: int
    warmup_steps: int
    updates_per_step: int

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            lo = 0 if f.name == "warmup_steps" else 1
            if not isinstance(v, int) or isinstance(v, bool) or v < lo:
                raise ValueError(f"make_train_sac: {f.name} must be an int >= {lo}, got {v!r}")
        per_chunk = self.num_envs * self.num_evals
        if self.num_env_steps % per_chunk:
            raise ValueError(
                f"make_train_sac: num_env_steps={self.num_env_steps} must be a multiple of "
                f"num_envs * num_evals = {per_chunk}"
            )


def _truncation(env_state: Any) -> jax.Array:
    info = getattr(env_state, "info", None) or {}
    if "truncation" in info:
        return info["truncation"].astype(jnp.float32)
    return jnp.zeros_like(env_state.done, dtype=jnp.float32)


def _where_done(done: jax.Array, on_done: Any, otherwise: Any) -> Any:
    def select(x, y):
        return jnp.where(jnp.reshape(done, done.shape + (1,) * (x.ndim - done.ndim)) > 0, x, y)

    return jax.tree_util.tree_map(select, on_done, otherwise)


def make_train_sac(
    env: Any,
    config: SACConfig,
    num_env_steps: int,
    *,
    num_envs: int = 1,
    num_evals: int = 10,
    num_eval_envs: int = 8,
    eval_episode_length: int | None = None,
    replay_capacity: int | None = None,
    warmup_steps: int = 1000,
    updates_per_step: int = 1,
) -> TrainSAC:
    """A pure SAC training loop over `num_envs` parallel copies of `env`.

    Each iteration steps all envs once (num_envs transitions), adds them to the replay buffer and
    then runs `updates_per_step` SAC updates (once at least `warmup_steps` transitions have been
    collected; before that, actions are uniform in [-1, 1]). The run is split into `num_evals`
    chunks of num_env_steps / num_evals transitions, each one `lax.scan`; after every chunk the
    deterministic policy is evaluated on `num_eval_envs` episodes of `eval_episode_length` steps
    (default: `env.episode_length` if the env has one, else 1000).

    `train(key)` returns metrics with `eval_env_steps` [num_evals + 1] and `eval_returns`
    [num_evals + 1, num_eval_envs] (row 0: the initial policy) and per-chunk means of the update
    metrics (each [num_evals]).
    """
    if eval_episode_length is None:
        eval_episode_length = int(getattr(env, "episode_length", 1000))
    if replay_capacity is None:
        replay_capacity = max(min(num_env_steps, 1_000_000), 1)
    settings = _LoopSettings(
        num_env_steps=num_env_steps,
        num_envs=num_envs,
        num_evals=num_evals,
        num_eval_envs=num_eval_envs,
        eval_episode_length=eval_episode_length,
        replay_capacity=replay_capacity,
        warmup_steps=warmup_steps,
        updates_per_step=updates_per_step,
    )
    obs_size = int(env.observation_size)
    action_size = int(env.action_size)
    sac = make_sac(config, obs_size, action_size)
    iters_per_chunk = num_env_steps // (num_envs * num_evals)
    v_reset = jax.vmap(env.reset)
    v_step = jax.vmap(env.step)

    def init(key: jax.Array) -> SACTrainState:
        k_agent, k_env, k_loop = jax.random.split(key, 3)
        env_state = v_reset(jax.random.split(k_env, num_envs))
        example = Transition(
            obs=jnp.zeros((obs_size,), jnp.float32),
            action=jnp.zeros((action_size,), jnp.float32),
            reward=jnp.zeros((), jnp.float32),
            next_obs=jnp.zeros((obs_size,), jnp.float32),
            terminated=jnp.zeros((), jnp.float32),
        )
        agent = sac.observe(sac.init(k_agent), env_state.obs)
        return SACTrainState(
            agent=agent,
            buffer=replay.init(settings.replay_capacity, example),
            env_state=env_state,
            env_steps=jnp.zeros((), jnp.int32),
            key=k_loop,
        )

    # Shapes of one SAC batch, for the zero metrics of iterations without updates.
    def spec(*shape: int) -> jax.ShapeDtypeStruct:
        return jax.ShapeDtypeStruct((config.batch_size,) + shape, jnp.float32)

    example_batch = Transition(
        obs=spec(obs_size),
        action=spec(action_size),
        reward=spec(),
        next_obs=spec(obs_size),
        terminated=spec(),
    )

    def zero_metrics(agent: SACState) -> dict[str, jax.Array]:
        shapes = jax.eval_shape(
            lambda a, b: sac.update(a, b, jax.random.key(0))[1], agent, example_batch
        )
        return jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)

    def env_iteration(ts: SACTrainState, _) -> tuple[SACTrainState, dict[str, jax.Array]]:
        key, k_act, k_rand, k_reset, k_update = jax.random.split(ts.key, 5)
        env_state = ts.env_state
        obs = env_state.obs
        policy_action = sac.act(ts.agent.actor_params, obs, k_act)
        random_action = jax.random.uniform(k_rand, policy_action.shape, minval=-1.0, maxval=1.0)
        warm = ts.env_steps < settings.warmup_steps
        action = jnp.where(warm, random_action, policy_action)

        next_state = v_step(env_state, action)
        done = next_state.done.astype(jnp.float32)
        transitions = Transition(
            obs=obs,
            action=action,
            reward=next_state.reward,
            next_obs=next_state.obs,
            terminated=done * (1.0 - _truncation(next_state)),
        )
        buffer = replay.add(ts.buffer, transitions)
        agent = sac.observe(ts.agent, next_state.obs)

        # Reset finished envs with fresh keys; skip the reset computation when none finished.
        env_state = jax.lax.cond(
            jnp.any(done > 0),
            lambda s: _where_done(done, v_reset(jax.random.split(k_reset, num_envs)), s),
            lambda s: s,
            next_state,
        )
        env_steps = ts.env_steps + num_envs

        def do_updates(a: SACState):
            sample_fn = lambda k: replay.sample(buffer, k, config.batch_size)
            return sac.update_many(a, sample_fn, k_update, settings.updates_per_step)

        learning = env_steps >= max(settings.warmup_steps, 1)
        agent, metrics = jax.lax.cond(learning, do_updates, lambda a: (a, zero_metrics(a)), agent)
        new_ts = SACTrainState(
            agent=agent, buffer=buffer, env_state=env_state, env_steps=env_steps, key=key
        )
        return new_ts, (metrics, learning.astype(jnp.float32))

    def run_chunk(ts: SACTrainState) -> tuple[SACTrainState, dict[str, jax.Array]]:
        """num_env_steps / num_evals transitions as one scan.

        Returns the update metrics averaged over the iterations that updated (zeros if none did)
        and `num_updates`, the number of SAC updates in this chunk.
        """
        ts, (metrics, learning) = jax.lax.scan(env_iteration, ts, None, length=iters_per_chunk)
        count = jnp.sum(learning)
        metrics = jax.tree_util.tree_map(
            lambda m: jnp.sum(m * learning, axis=0) / jnp.maximum(count, 1.0), metrics
        )
        metrics["num_updates"] = (count * settings.updates_per_step).astype(jnp.int32)
        return ts, metrics

    def evaluate(agent: SACState, key: jax.Array) -> jax.Array:
        """Undiscounted returns [num_eval_envs] of the deterministic policy, one episode each."""
        state = v_reset(jax.random.split(key, settings.num_eval_envs))
        params = agent.actor_params

        def step(carry, _):
            s, alive, ret = carry
            action = sac.act(params, s.obs, key, deterministic=True)
            s = v_step(s, action)
            ret = ret + alive * s.reward
            alive = alive * (1.0 - s.done.astype(jnp.float32))
            return (s, alive, ret), None

        alive = jnp.ones((settings.num_eval_envs,), jnp.float32)
        (_, _, returns), _ = jax.lax.scan(
            step, (state, alive, jnp.zeros_like(alive)), None, length=settings.eval_episode_length
        )
        return returns

    def train(key: jax.Array) -> tuple[SACTrainState, dict[str, jax.Array]]:
        """The whole run as one program: jit(vmap(train))(keys) sweeps seeds."""
        k_init, k_eval = jax.random.split(key)
        ts = init(k_init)
        eval_keys = jax.random.split(k_eval, settings.num_evals + 1)
        first = evaluate(ts.agent, eval_keys[0])

        def chunk(ts: SACTrainState, k: jax.Array):
            ts, metrics = run_chunk(ts)
            return ts, (metrics, evaluate(ts.agent, k), ts.env_steps)

        ts, (metrics, returns, steps) = jax.lax.scan(chunk, ts, eval_keys[1:])
        metrics = dict(metrics)
        metrics["eval_returns"] = jnp.concatenate([first[None], returns], axis=0)
        metrics["eval_env_steps"] = jnp.concatenate([jnp.zeros((1,), jnp.int32), steps])
        return ts, metrics

    return TrainSAC(
        init=init,
        run_chunk=run_chunk,
        evaluate=evaluate,
        train=train,
        sac=sac,
        num_chunks=settings.num_evals,
        env_steps_per_chunk=iters_per_chunk * num_envs,
    )
