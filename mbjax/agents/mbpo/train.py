"""The MBPO loop as pure functions: one compiled epoch, `make_train(config) -> train(key)`.

The lecture notes' "model-based RL version 3.0": real env steps fill a real-data buffer; every
`model_train_every` transitions the ensemble is refitted and short rollouts branched from real
states fill a model buffer; SAC trains on a real/model mix, several updates per env step.

Structure of one epoch (one `lax.scan`, no `lax.cond` around the model or SAC):
  scan over blocks_per_epoch blocks:
      refit ensemble on the real buffer -> rollouts from real states -> model buffer
      scan over model_train_every / num_envs iterations:
          step num_envs envs with the SAC policy (auto-reset) -> real buffer
          updates_per_step * num_envs SAC updates on mixed batches
  evaluate the deterministic policy on num_eval_episodes episodes.
The uniform-random exploration that precedes MBPO's first epoch runs in `init`.
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from mbjax import envs as mbjax_envs
from mbjax import replay
from mbjax.agents.mbpo.config import Config
from mbjax.agents.mbpo.rollouts import make_model_rollout, rollout_length, sample_recent
from mbjax.agents.program import Program, Segment, make_pure_train
from mbjax.agents.sac import SAC, SACState, make_sac
from mbjax.models import Ensemble, ModelState, make_ensemble
from mbjax.types import Transition


@struct.dataclass
class MBPOState:
    """Everything an MBPO run needs to continue, as one pytree (what checkpoints hold).

    sac: SAC learner state; model: ensemble state (None when use_model=False);
    real_buffer: real transitions; model_buffer: model transitions (None without a model);
    env_state: the training envs, leaves [B, ...]; episode_return: [B] running returns of the
    training episodes; last_return: [B] return of each env's last finished episode (NaN before);
    key: the run's PRNG key; epoch / env_steps: int32 counters.
    """

    sac: SACState
    model: ModelState | None
    real_buffer: replay.ReplayBuffer
    model_buffer: replay.ReplayBuffer | None
    env_state: Any
    episode_return: jax.Array
    last_return: jax.Array
    key: jax.Array
    epoch: jax.Array
    env_steps: jax.Array


class EpochMetrics(NamedTuple):
    """Per-epoch scalars (stacked over epochs by `make_train`).

    episode_return: mean evaluation return of the deterministic policy after the epoch.
    sac: dict of SAC update metrics (means over the epoch's updates).
    """

    env_steps: jax.Array
    episode_return: jax.Array
    eval_return_std: jax.Array
    train_return: jax.Array
    rollout_length: jax.Array
    model_train_mse: jax.Array
    model_holdout_mse: jax.Array
    model_rollout_reward: jax.Array
    model_buffer_size: jax.Array
    nonfinite: jax.Array
    sac: dict


class MBPO(NamedTuple):
    """Function bundle built from a Config (all pure; jit where you call them).

    init(key) -> MBPOState          (includes the initial random exploration)
    epoch(state) -> (state, EpochMetrics)
    evaluate(actor_params, key) -> returns [num_eval_episodes]
    """

    config: Config
    env: Any
    sac: SAC
    model: Ensemble | None
    num_eval_steps: int
    init: Callable[[jax.Array], MBPOState]
    epoch: Callable[[MBPOState], tuple[MBPOState, EpochMetrics]]
    evaluate: Callable[[Any, jax.Array], jax.Array]


def resolve_task(config: Config) -> tuple[Callable | None, Callable | None]:
    """Known reward/termination functions where the config asks for them (else None)."""
    if not config.use_model or (config.learned_reward and config.learned_termination):
        return None, None
    task = mbjax_envs.task_fns(config.env)
    reward_fn = None
    if not config.learned_reward:
        if not task.reward_is_exact:
            raise ValueError(
                f"env {config.env!r}: its reward cannot be computed exactly from observations "
                f"({task.note}); use learned_reward=True"
            )
        reward_fn = task.reward_fn
    termination_fn = None if config.learned_termination else task.termination_fn
    return reward_fn, termination_fn


def _where_rows(mask: jax.Array, new: Any, old: Any) -> Any:
    """Per-row select over pytrees with leading [B]: new where mask [B] else old."""

    def sel(n, o):
        return jnp.where(mask.reshape(mask.shape + (1,) * (n.ndim - 1)), n, o)

    return jax.tree_util.tree_map(sel, new, old)


def make_mbpo(config: Config) -> MBPO:
    """Builds the env, SAC, ensemble and the epoch function for `config`."""
    env = mbjax_envs.make(
        config.env, episode_length=config.episode_length, action_repeat=config.action_repeat
    )
    obs_size, action_size = int(env.observation_size), int(env.action_size)
    sac = make_sac(config.sac, obs_size, action_size)
    model = make_ensemble(config.model, obs_size, action_size) if config.use_model else None
    reward_fn, termination_fn = resolve_task(config)
    num_envs = config.num_envs
    iters_per_block = config.model_train_every // num_envs
    updates_per_iter = config.updates_per_step * num_envs
    num_eval_steps = math.ceil(env.episode_length / config.action_repeat)
    n_real = config.num_real_samples
    n_model = config.sac.batch_size - n_real
    real_capacity = config.replay_capacity or config.total_env_steps
    v_reset, v_step = jax.vmap(env.reset), jax.vmap(env.step)

    act = lambda params, obs, key: sac.act(params, obs, key)
    if config.use_model:
        model_rollout = make_model_rollout(
            model, act, config.max_rollout_length, reward_fn, termination_fn
        )

    example = Transition(
        obs=jnp.zeros(obs_size), action=jnp.zeros(action_size), reward=jnp.zeros(()),
        next_obs=jnp.zeros(obs_size), terminated=jnp.zeros(()),
    )

    def env_iteration(state: MBPOState, key: jax.Array, random_actions: bool):
        """num_envs env steps (auto-reset) into the real buffer. Returns (state, transitions)."""
        k_act, k_reset = jax.random.split(key)
        obs = state.env_state.obs
        if random_actions:
            action = jax.random.uniform(k_act, (num_envs, action_size), minval=-1.0, maxval=1.0)
        else:
            action = sac.act(state.sac.actor_params, obs, k_act)
        nxt = v_step(state.env_state, action)
        done = nxt.done.astype(jnp.float32)
        truncation = nxt.info.get("truncation", jnp.zeros_like(done)).astype(jnp.float32)
        transitions = Transition(obs=obs, action=action, reward=nxt.reward, next_obs=nxt.obs,
                                 terminated=done * (1.0 - truncation))
        ep_ret = state.episode_return + nxt.reward
        finished = done > 0
        last = jnp.where(finished, ep_ret, state.last_return)
        # Reset finished envs with fresh keys (skipped when none finished; a select under vmap).
        env_state = jax.lax.cond(
            jnp.any(finished),
            lambda s: _where_rows(finished, v_reset(jax.random.split(k_reset, num_envs)), s),
            lambda s: s,
            nxt,
        )
        state = state.replace(
            sac=sac.observe(state.sac, nxt.obs),
            real_buffer=replay.add(state.real_buffer, transitions),
            env_state=env_state,
            episode_return=jnp.where(finished, 0.0, ep_ret),
            last_return=last,
            env_steps=state.env_steps + num_envs * config.action_repeat,
        )
        return state, transitions

    def init(key: jax.Array) -> MBPOState:
        k_sac, k_model, k_env, k_explore, k_run = jax.random.split(key, 5)
        env_state = v_reset(jax.random.split(k_env, num_envs))
        state = MBPOState(
            sac=sac.observe(sac.init(k_sac), env_state.obs),
            model=model.init(k_model) if config.use_model else None,
            real_buffer=replay.init(real_capacity, example),
            model_buffer=(replay.init(config.model_capacity, example)
                          if config.use_model else None),
            env_state=env_state,
            episode_return=jnp.zeros((num_envs,), jnp.float32),
            last_return=jnp.full((num_envs,), jnp.nan, jnp.float32),
            key=k_run,
            epoch=jnp.zeros((), jnp.int32),
            env_steps=jnp.zeros((), jnp.int32),
        )
        n_explore = config.init_random_steps // num_envs
        if n_explore:
            state, _ = jax.lax.scan(
                lambda s, k: env_iteration(s, k, random_actions=True), state,
                jax.random.split(k_explore, n_explore),
            )
        return state

    def sample_batch(real_buffer, model_buffer, window, key) -> Transition:
        """One SAC batch [batch_size]: n_real real items, then n_model model items."""
        k_real, k_model = jax.random.split(key)
        parts = []
        if n_real:
            parts.append(replay.sample(real_buffer, k_real, n_real))
        if n_model:
            parts.append(sample_recent(model_buffer, k_model, n_model, window))
        return jax.tree_util.tree_map(lambda *xs: jnp.concatenate(xs, axis=0), *parts)

    def learn_iteration(state: MBPOState, key: jax.Array, window: jax.Array):
        k_env, k_update = jax.random.split(key)
        state, _ = env_iteration(state, k_env, random_actions=False)
        sample_fn = lambda k: sample_batch(state.real_buffer, state.model_buffer, window, k)
        agent, metrics = sac.update_many(state.sac, sample_fn, k_update, updates_per_iter)
        return state.replace(sac=agent), metrics

    nan = jnp.full((), jnp.nan, jnp.float32)

    def block(state: MBPOState, key: jax.Array, length: jax.Array):
        """Refit + rollouts (with a model), then model_train_every env transitions."""
        k_fit, k_start, k_roll, k_iters = jax.random.split(key, 4)
        window = jnp.zeros((), jnp.int32)
        model_metrics = (nan, nan, nan, jnp.zeros((), bool))
        if config.use_model:
            model_state, fit_info = model.fit(state.model, state.real_buffer, k_fit)
            elites = model_state.elites
            obs0 = replay.sample(state.real_buffer, k_start, config.rollout_batch_size).obs
            transitions, valid = model_rollout(
                model_state, state.sac.actor_params, obs0, length, k_roll
            )
            flat = jax.tree_util.tree_map(
                lambda x: x.reshape((-1,) + x.shape[2:]), transitions
            )
            model_buffer = replay.add_masked(state.model_buffer, flat, valid.reshape(-1))
            # MBPO's pool holds `retain` epochs of rollouts at the *current* length.
            window = (config.rollout_batch_size * length * config.blocks_per_epoch
                      * config.model_retain_epochs)
            rollout_reward = jnp.sum(transitions.reward * valid) / jnp.maximum(jnp.sum(valid), 1)
            model_metrics = (
                jnp.mean(fit_info["train_mse"][elites]),
                jnp.mean(fit_info["holdout_mse"][elites]),
                rollout_reward,
                fit_info["nonfinite"],
            )
            state = state.replace(model=model_state, model_buffer=model_buffer)
        state, sac_metrics = jax.lax.scan(
            lambda s, k: learn_iteration(s, k, window), state,
            jax.random.split(k_iters, iters_per_block),
        )
        return state, (model_metrics, jax.tree_util.tree_map(jnp.mean, sac_metrics))

    def evaluate(actor_params, key: jax.Array) -> jax.Array:
        """Undiscounted returns [num_eval_episodes] of the deterministic policy."""
        n = config.num_eval_episodes
        env_state = v_reset(jax.random.split(key, n))

        def step(carry, _):
            s, alive, ret = carry
            s = v_step(s, sac.act(actor_params, s.obs, key, deterministic=True))
            ret = ret + alive * s.reward
            return (s, alive * (1.0 - s.done.astype(jnp.float32)), ret), None

        alive = jnp.ones((n,), jnp.float32)
        (_, _, returns), _ = jax.lax.scan(
            step, (env_state, alive, jnp.zeros_like(alive)), None, length=num_eval_steps
        )
        return returns

    def epoch(state: MBPOState) -> tuple[MBPOState, EpochMetrics]:
        key, k_blocks, k_eval = jax.random.split(state.key, 3)
        length = rollout_length(state.epoch, config.rollout_schedule)
        state, (model_m, sac_m) = jax.lax.scan(
            lambda s, k: block(s, k, length), state,
            jax.random.split(k_blocks, config.blocks_per_epoch),
        )
        returns = evaluate(state.sac.actor_params, k_eval)
        sac_m = jax.tree_util.tree_map(jnp.mean, sac_m)
        finite_sac = jnp.all(jnp.stack([jnp.isfinite(v) for v in jax.tree_util.tree_leaves(sac_m)]))
        nonfinite = jnp.any(model_m[3]) | ~finite_sac | ~jnp.all(jnp.isfinite(returns))
        last = state.last_return
        seen = ~jnp.isnan(last)
        train_return = jnp.where(
            jnp.any(seen), jnp.sum(jnp.where(seen, last, 0.0)) / jnp.maximum(jnp.sum(seen), 1),
            jnp.nan,
        )
        state = state.replace(key=key, epoch=state.epoch + 1)
        metrics = EpochMetrics(
            env_steps=state.env_steps,
            episode_return=jnp.mean(returns),
            eval_return_std=jnp.std(returns),
            train_return=train_return,
            rollout_length=length,
            model_train_mse=jnp.mean(model_m[0]),
            model_holdout_mse=jnp.mean(model_m[1]),
            model_rollout_reward=jnp.mean(model_m[2]),
            model_buffer_size=(state.model_buffer.size if config.use_model
                               else jnp.zeros((), jnp.int32)),
            nonfinite=nonfinite,
            sac=sac_m,
        )
        return state, metrics

    return MBPO(
        config=config, env=env, sac=sac, model=model, num_eval_steps=num_eval_steps,
        init=jax.jit(init), epoch=epoch, evaluate=evaluate,
    )


def _num(x: Any) -> float | None:
    v = float(np.asarray(x))
    return None if math.isnan(v) else v


def make_program(config: Config, mbpo: MBPO | None = None) -> Program:
    """The MBPO run as a Program: `num_epochs` identical compiled epochs."""
    mbpo = mbpo or make_mbpo(config)

    def to_record(epoch: int, m: EpochMetrics) -> dict[str, Any]:
        record = {
            "episode": epoch,
            "epoch": epoch,
            "env_steps": int(m.env_steps),
            "episode_return": float(m.episode_return),
            "eval_return_std": float(m.eval_return_std),
            "train_return": _num(m.train_return),
            "rollout_length": int(m.rollout_length),
            "model_train_mse": _num(m.model_train_mse),
            "model_holdout_mse": _num(m.model_holdout_mse),
            "model_rollout_reward": _num(m.model_rollout_reward),
            "model_buffer_size": int(m.model_buffer_size),
        }
        record.update({k: _num(v) for k, v in sorted(m.sac.items())})
        return record

    return Program(
        init=mbpo.init, segments=(Segment(mbpo.epoch, config.num_epochs),), to_record=to_record
    )


def make_train(config: Config) -> Callable[[jax.Array], tuple[MBPOState, EpochMetrics]]:
    """A pure `train(key) -> (final_state, metrics)`; metrics leaves are [num_epochs].

    `jax.jit(jax.vmap(make_train(config)))(keys)` runs a seed sweep as one program; the host
    driver (`mbjax.agents.mbpo.train`) runs the same epoch function one epoch at a time.
    """
    return make_pure_train(make_program(config))
