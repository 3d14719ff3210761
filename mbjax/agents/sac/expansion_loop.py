"""SAC with model-based value expansion (`--algo=sac --config.value_expansion=mve|steve`) as a
Program: SAC alone's loop (`train.make_loop`) plus an ensemble refitted on the real data, whose
H-step continuations of every SAC batch give the critics' targets (`expansion.py`).

One epoch (one compiled iteration):
  scan over steps_per_epoch / model_train_every blocks:
      refit the ensemble on the real buffer (its compiled `fit`)
      scan over model_train_every / num_envs iterations:
          step num_envs envs with the SAC policy -> real buffer
          updates_per_step * num_envs SAC updates on real batches, critic targets expanded
          through the model state of this block
  evaluate the deterministic policy.
Unlike MBPO nothing the model produces is stored: the model only shapes the targets.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

from mbjax import envs as mbjax_envs
from mbjax import replay
from mbjax.agents.program import Program, Segment
from mbjax.agents.sac import expansion
from mbjax.agents.sac.config import Config
from mbjax.agents.sac.train import EpochMetrics, TrainState, epoch_record, make_loop, optional_float
from mbjax.models import FitMetrics, learner_model
from mbjax.types import Transition


@struct.dataclass
class ExpansionState(TrainState):
    """SAC alone's TrainState plus the ensemble's state `model`."""

    model: Any


class ExpansionMetrics(NamedTuple):
    """The epoch's model fits: mean train / holdout MSE over the elites (EpochMetrics.extra)."""

    train_mse: jax.Array
    holdout_mse: jax.Array


class ExpansionRun(NamedTuple):
    """init(key) -> ExpansionState (random exploration included); epoch(state) -> (state,
    EpochMetrics); the model and the SAC loop they use."""

    init: Callable[[jax.Array], ExpansionState]
    epoch: Callable[[ExpansionState], tuple[ExpansionState, EpochMetrics]]
    model: Any
    loop: Any


def make_expansion_run(config: Config, model: Any = None) -> ExpansionRun:
    """Builds the loop for a Config with value_expansion "mve" or "steve".

    model: a dynamics-model protocol implementation to use instead of the ensemble of
    `config.expansion.model`.
    """
    exp = config.expansion
    loop = make_loop(config)
    env = loop.env
    model = learner_model(model, exp, int(env.observation_size), int(env.action_size),
                          "SAC value expansion")
    reward_fn, termination_fn = mbjax_envs.resolve_task(
        config.env, exp.learned_reward, exp.learned_termination, exp.use_estimated_reward)
    blocks = config.steps_per_epoch // exp.model_train_every
    iterations = exp.model_train_every // config.num_envs

    def sample_real(state: ExpansionState, key: jax.Array) -> Transition:
        return replay.sample(state.buffer, key, config.sac.batch_size)

    def init(key: jax.Array) -> ExpansionState:
        k_sac, k_model, k_env, k_explore, k_run = jax.random.split(key, 5)
        base = loop.init_state(k_sac, k_env, k_run)
        state = ExpansionState(**{f.name: getattr(base, f.name) for f in dataclasses.fields(base)},
                               model=model.init(k_model))
        return loop.explore(state, k_explore)

    def block(state: ExpansionState, key: jax.Array):
        k_fit, k_iters = jax.random.split(key)
        model_state, fit_info = model.fit(state.model, state.buffer, k_fit)
        targets_fn = expansion.make_targets_fn(config.value_expansion, model, model_state,
                                               exp.horizon, reward_fn, termination_fn)
        state, sac_metrics = jax.lax.scan(
            lambda s, k: loop.learn_iteration(s, k, sample_real, targets_fn),
            state.replace(model=model_state), jax.random.split(k_iters, iterations))
        return state, (FitMetrics.of(fit_info), jax.tree_util.tree_map(jnp.mean, sac_metrics))

    def epoch(state: ExpansionState) -> tuple[ExpansionState, EpochMetrics]:
        key, k_blocks, k_eval = jax.random.split(state.key, 3)
        state, (fit, sac_metrics) = jax.lax.scan(block, state, jax.random.split(k_blocks, blocks))
        state, metrics = loop.finish_epoch(state, key, k_eval, sac_metrics,
                                           jnp.any(fit.nonfinite))
        extra = ExpansionMetrics(train_mse=jnp.mean(fit.train_loss),
                                 holdout_mse=jnp.mean(fit.holdout_loss))
        return state, metrics._replace(extra=extra)

    return ExpansionRun(init=jax.jit(init), epoch=epoch, model=model, loop=loop)


def make_expansion_program(config: Config, run: ExpansionRun | None = None) -> Program:
    """SAC with value expansion as a Program: `num_epochs` identical compiled epochs."""
    run = run or make_expansion_run(config)

    def to_record(epoch: int, m: EpochMetrics) -> dict[str, Any]:
        return {**epoch_record(epoch, m), "model_train_mse": optional_float(m.extra.train_mse),
                "model_holdout_mse": optional_float(m.extra.holdout_mse)}

    return Program(init=run.init, segments=(Segment(run.epoch, config.num_epochs),),
                   to_record=to_record, on_nonfinite=config.on_nonfinite)


__all__ = ["ExpansionMetrics", "ExpansionRun", "ExpansionState", "make_expansion_program",
           "make_expansion_run"]
