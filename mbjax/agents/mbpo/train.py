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

The env steps, SAC updates and evaluation are SAC alone's loop (`mbjax.agents.sac.make_loop`,
built from `sac_alone(config)`): MBPO adds the model blocks and mixes model data into the batches.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

from mbjax import acting, replay
from mbjax import envs as mbjax_envs
from mbjax.agents.mbpo.config import Config
from mbjax.agents.mbpo.presets import sac_alone
from mbjax.agents.mbpo.rollouts import make_model_rollout, rollout_length, sample_recent
from mbjax.agents.program import Program, Segment, make_pure_train
from mbjax.agents.sac import SAC, SACLoop, TrainState, epoch_record, make_loop
from mbjax.agents.sac import EpochMetrics as SACEpochMetrics
from mbjax.agents.sac.train import optional_float
from mbjax.models import FitMetrics, learner_model
from mbjax.types import Transition


@struct.dataclass
class MBPOState(TrainState):
    """SAC alone's `TrainState` (sac, buffer of real transitions, envs, key, epoch, env_steps)
    plus the ensemble state `model` and the `model_buffer` of model transitions."""

    model: Any  # the model's state (an ensemble's ModelState by default)
    model_buffer: replay.ReplayBuffer


class ModelBlockMetrics(NamedTuple):
    """One model block's scalars: the fit's (losses over the elites, NaN/Inf met) and the mean
    reward of the stored model transitions."""

    fit: FitMetrics
    rollout_reward: jax.Array


class ModelEpochMetrics(NamedTuple):
    """MBPO's additions to SAC alone's EpochMetrics (its `extra`): the epoch's rollout length,
    the fits' mean MSE over the elites (train / holdout), the mean reward of the stored model
    transitions, and the model buffer's size."""

    rollout_length: jax.Array
    train_mse: jax.Array
    holdout_mse: jax.Array
    rollout_reward: jax.Array
    buffer_size: jax.Array


# Per-epoch scalars (stacked over epochs by `make_train`): SAC alone's, `extra` a ModelEpochMetrics.
EpochMetrics = SACEpochMetrics


class MBPO(NamedTuple):
    """Function bundle built from a Config (all pure; jit where you call them).

    init(key) -> MBPOState          (includes the initial random exploration)
    epoch(state) -> (state, EpochMetrics)
    loop: the SAC loop MBPO composes (env, SAC learner, env steps, updates, evaluation).
    """

    config: Config
    loop: SACLoop
    model: Any  # a dynamics-model protocol implementation
    init: Callable[[jax.Array], MBPOState]
    epoch: Callable[[MBPOState], tuple[MBPOState, EpochMetrics]]

    @property
    def env(self) -> Any:
        return self.loop.env

    @property
    def sac(self) -> SAC:
        return self.loop.sac


def mixed_batch(state: MBPOState, window: jax.Array, key: jax.Array, n_real: int,
                n_model: int) -> Transition:
    """One SAC batch [n_real + n_model]: real items, then items from the newest `window` of the
    model buffer."""
    k_real, k_model = jax.random.split(key)
    parts = []
    if n_real:
        parts.append(replay.sample(state.buffer, k_real, n_real))
    if n_model:
        parts.append(sample_recent(state.model_buffer, k_model, n_model, window))
    return jax.tree_util.tree_map(lambda *xs: jnp.concatenate(xs, axis=0), *parts)


def refit_and_roll_out(model: Any, model_rollout: Callable[..., Any], config: Config,
                       state: MBPOState, keys: tuple[jax.Array, jax.Array, jax.Array],
                       length: jax.Array) -> tuple[MBPOState, ModelBlockMetrics, jax.Array]:
    """Refits the ensemble, adds rollouts from real states. -> (state, metrics, window).

    keys: (k_fit, k_start, k_roll); length: this epoch's rollout length (int32 scalar);
    model_rollout: `make_model_rollout`'s function; window: how many of the model buffer's
    newest transitions the SAC batches sample from.
    """
    k_fit, k_start, k_roll = keys
    model_state, fit_info = model.fit(state.model, state.buffer, k_fit)
    obs0 = replay.sample(state.buffer, k_start, config.rollout_batch_size).obs
    transitions, valid = model_rollout(
        model_state, state.sac.actor_params, obs0, length, k_roll
    )
    flat = jax.tree_util.tree_map(lambda x: x.reshape((-1,) + x.shape[2:]), transitions)
    model_buffer = replay.add_masked(state.model_buffer, flat, valid.reshape(-1))
    # MBPO's pool holds `retain` epochs of rollouts at the *current* length.
    window = (config.rollout_batch_size * length * config.blocks_per_epoch
              * config.model_retain_epochs)
    metrics = ModelBlockMetrics(
        fit=FitMetrics.of(fit_info),
        rollout_reward=jnp.sum(transitions.reward * valid) / jnp.maximum(jnp.sum(valid), 1),
    )
    return state.replace(model=model_state, model_buffer=model_buffer), metrics, window


def make_mbpo(config: Config, model: Any = None) -> MBPO:
    """Builds the SAC loop, the ensemble and the epoch function for `config`.

    model: any dynamics-model protocol implementation (`mbjax.models.base`) to use instead of
    the ensemble described by `config.model` (which is then ignored).
    """
    loop = make_loop(sac_alone(config))
    sac, env = loop.sac, loop.env
    obs_size, action_size = int(env.observation_size), int(env.action_size)
    model = learner_model(model, config, obs_size, action_size, "make_mbpo")
    reward_fn, termination_fn = mbjax_envs.resolve_task(
        config.env, config.learned_reward, config.learned_termination,
        config.use_estimated_reward,
    )
    n_real = config.num_real_samples
    sample_batch = lambda state, window, key: mixed_batch(
        state, window, key, n_real, config.sac.batch_size - n_real
    )
    model_rollout = make_model_rollout(
        model, lambda params, obs, key: sac.act(params, obs, key), config.max_rollout_length,
        reward_fn, termination_fn,
    )

    def init(key: jax.Array) -> MBPOState:
        k_sac, k_model, k_env, k_explore, k_run = jax.random.split(key, 5)
        base = loop.init_state(k_sac, k_env, k_run)
        state = MBPOState(
            **{f.name: getattr(base, f.name) for f in dataclasses.fields(base)},
            model=model.init(k_model),
            model_buffer=replay.init(config.model_capacity,
                                     acting.empty_transition(obs_size, action_size)),
        )
        return loop.explore(state, k_explore)

    refit = functools.partial(refit_and_roll_out, model, model_rollout, config)

    def block(state: MBPOState, key: jax.Array, length: jax.Array):
        """Refit + rollouts, then model_train_every env transitions with SAC updates."""
        k_fit, k_start, k_roll, k_iters = jax.random.split(key, 4)
        state, model_metrics, window = refit(state, (k_fit, k_start, k_roll), length)
        state, sac_metrics = jax.lax.scan(
            lambda s, k: loop.learn_iteration(s, k, lambda st, kk: sample_batch(st, window, kk)),
            state, jax.random.split(k_iters, config.model_train_every // config.num_envs),
        )
        return state, (model_metrics, jax.tree_util.tree_map(jnp.mean, sac_metrics))

    def epoch(state: MBPOState) -> tuple[MBPOState, EpochMetrics]:
        key, k_blocks, k_eval = jax.random.split(state.key, 3)
        length = rollout_length(state.epoch, config.rollout_schedule)
        state, (model_m, sac_m) = jax.lax.scan(
            lambda s, k: block(s, k, length), state,
            jax.random.split(k_blocks, config.blocks_per_epoch),
        )
        nonfinite = jnp.any(model_m.fit.nonfinite)
        state, metrics = loop.finish_epoch(state, key, k_eval, sac_m, nonfinite)
        extra = ModelEpochMetrics(
            rollout_length=length,
            train_mse=jnp.mean(model_m.fit.train_loss),
            holdout_mse=jnp.mean(model_m.fit.holdout_loss),
            rollout_reward=jnp.mean(model_m.rollout_reward),
            buffer_size=state.model_buffer.size,
        )
        return state, metrics._replace(extra=extra)

    return MBPO(config=config, loop=loop, model=model, init=jax.jit(init), epoch=epoch)


def make_program(config: Config, mbpo: MBPO | None = None) -> Program:
    """The MBPO run as a Program: `num_epochs` identical compiled epochs."""
    mbpo = mbpo or make_mbpo(config)

    def to_record(epoch: int, m: EpochMetrics) -> dict[str, Any]:
        model_m = m.extra
        return {
            **epoch_record(epoch, m),
            "rollout_length": int(model_m.rollout_length),
            "model_train_mse": optional_float(model_m.train_mse),
            "model_holdout_mse": optional_float(model_m.holdout_mse),
            "model_rollout_reward": optional_float(model_m.rollout_reward),
            "model_buffer_size": int(model_m.buffer_size),
        }

    return Program(
        init=mbpo.init, segments=(Segment(mbpo.epoch, config.num_epochs),), to_record=to_record,
        on_nonfinite=config.on_nonfinite,
    )


def make_train(config: Config) -> Callable[[jax.Array], tuple[MBPOState, EpochMetrics]]:
    """A pure `train(key) -> (final_state, metrics)`; metrics leaves are [num_epochs].

    `jax.jit(jax.vmap(make_train(config)))(keys)` runs a seed sweep as one program; the host
    driver (`mbjax.agents.mbpo.train`) runs the same epoch function one epoch at a time.
    """
    return make_pure_train(make_program(config))
