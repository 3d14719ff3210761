"""The MAAC loop: MBPO's (model refits, branched rollouts into a model buffer, mixed batches,
real env steps, evaluation) with MAAC's update in place of SAC's.

Structure of one epoch (one `lax.scan`, as MBPO's):
  scan over blocks_per_epoch blocks:
      refit ensemble + rollouts from real states -> model buffer  (`refit_and_roll_out`)
      scan over model_train_every / num_envs iterations:
          step num_envs envs with the SAC policy -> real buffer    (`sac.train.env_iteration`)
          updates_per_step * num_envs MAAC updates: critics on mixed real/model batches
          (`mbpo.train.mixed_batch`), the actor on H imagined steps from real starts
  evaluate the deterministic policy                                (`SACLoop.finish_epoch`)
`init` is MBPO's (random exploration, empty model buffer); the state is `MBPOState`.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from mbjax import envs as mbjax_envs
from mbjax import replay
from mbjax.agents import mbpo
from mbjax.agents.maac import update as maac_update
from mbjax.agents.maac.config import Config
from mbjax.agents.mbpo.train import ModelEpochMetrics, mixed_batch, refit_and_roll_out
from mbjax.agents.program import Program, make_pure_train
from mbjax.agents.sac.train import env_iteration


def make_maac(config: Config, model: Any = None) -> mbpo.MBPO:
    """MBPO's function bundle for `config` with MAAC's epoch (model: a protocol model to use
    instead of the ensemble of `config.model`, as in `mbpo.make_mbpo`)."""
    base = mbpo.make_mbpo(config, model)
    loop, sac, model = base.loop, base.sac, base.model
    reward_fn, termination_fn = mbjax_envs.resolve_task(
        config.env, config.learned_reward, config.learned_termination,
        config.use_estimated_reward)
    parts = sac.parts
    setup = maac_update.ImaginationSetup(model, config.horizon, reward_fn, termination_fn,
                                         config.max_grad_norm)
    model_rollout = mbpo.make_model_rollout(
        model, lambda params, obs, key: sac.act(params, obs, key), config.max_rollout_length,
        reward_fn, termination_fn)
    refit = functools.partial(refit_and_roll_out, model, model_rollout, config)
    step_envs = functools.partial(env_iteration, loop.env, sac, loop.config)
    batch_size, n_real = config.sac.batch_size, config.num_real_samples
    num_updates = config.updates_per_step * config.num_envs

    def learn_iteration(state: mbpo.MBPOState, key: jax.Array, window: jax.Array):
        """num_envs env steps, then num_updates MAAC updates."""
        k_env, k_updates = jax.random.split(key)
        state = step_envs(state, k_env, random_actions=False)

        def one(sac_state, k):
            k_batch, k_start, k_update = jax.random.split(k, 3)
            batch = mixed_batch(state, window, k_batch, n_real, batch_size - n_real)
            starts = replay.sample(state.buffer, k_start, batch_size).obs
            return maac_update.update(parts, setup, sac_state, state.model, batch, starts,
                                      k_update)

        sac_state, metrics = jax.lax.scan(one, state.sac, jax.random.split(k_updates,
                                                                           num_updates))
        return state.replace(sac=sac_state), jax.tree_util.tree_map(jnp.mean, metrics)

    def block(state: mbpo.MBPOState, key: jax.Array, length: jax.Array):
        k_fit, k_start, k_roll, k_iters = jax.random.split(key, 4)
        state, model_metrics, window = refit(state, (k_fit, k_start, k_roll), length)
        state, metrics = jax.lax.scan(
            lambda s, k: learn_iteration(s, k, window), state,
            jax.random.split(k_iters, config.model_train_every // config.num_envs))
        return state, (model_metrics, jax.tree_util.tree_map(jnp.mean, metrics))

    def epoch(state: mbpo.MBPOState):
        key, k_blocks, k_eval = jax.random.split(state.key, 3)
        length = mbpo.rollout_length(state.epoch, config.rollout_schedule)
        state, (model_m, sac_m) = jax.lax.scan(
            lambda s, k: block(s, k, length), state,
            jax.random.split(k_blocks, config.blocks_per_epoch))
        state, metrics = loop.finish_epoch(state, key, k_eval, sac_m,
                                           jnp.any(model_m.fit.nonfinite))
        return state, metrics._replace(extra=ModelEpochMetrics(
            rollout_length=length, train_mse=jnp.mean(model_m.fit.train_loss),
            holdout_mse=jnp.mean(model_m.fit.holdout_loss),
            rollout_reward=jnp.mean(model_m.rollout_reward),
            buffer_size=state.model_buffer.size,
        ))

    return base._replace(epoch=epoch)


def make_program(config: Config, maac: mbpo.MBPO | None = None) -> Program:
    """MAAC as a Program: MBPO's (`num_epochs` compiled epochs, MBPO's records) with MAAC's
    epoch; the records add the actor's gradient norm and pathwise terms."""
    return mbpo.make_program(config, maac or make_maac(config))


def make_train(config: Config):
    """A pure `train(key) -> (final_state, metrics)`; metrics leaves are [num_epochs]."""
    return make_pure_train(make_program(config))
