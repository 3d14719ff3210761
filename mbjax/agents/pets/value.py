"""The learned terminal value of PETS's MPC (`Config.terminal_value`; TD-MPC, Hansen et al.
2022; LOOP, Sikchi et al. 2022).

A SAC learner (`mbjax.agents.sac.make_sac`) trained on PETS's real buffer gives
V(s) = min_c Q_c(s, pi(s)) of its deterministic policy (`SAC.value`), which the planning
objective adds at the horizon (`rollout.propagate`'s terminal_value). Its critics regress onto
MVE targets through the ensemble PETS has just refitted (`mbjax.agents.sac.expansion`: H model
steps from every real next state), so the value learns from real and model data; with
expansion_horizon 0 they use SAC's one-step targets on real data only.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp

from mbjax import replay
from mbjax.agents.pets.config import Config, TerminalValueConfig
from mbjax.agents.sac import SAC, SACState, make_sac
from mbjax.agents.sac.expansion import make_targets_fn
from mbjax.agents.sac.update import CriticTargets, TargetsFn, one_step_targets


def make_critic(config: Config, obs_size: int, action_size: int) -> SAC | None:
    """The terminal value's SAC learner bundle for `config`, None without a terminal value."""
    if not config.terminal_value:
        return None
    return make_sac(config.value.sac, obs_size, action_size)


def train_critic(critic: SAC, model: Any, value: TerminalValueConfig,
                 reward_fn: Callable | None, termination_fn: Callable | None,
                 state: SACState, buffer: replay.ReplayBuffer, model_state: Any,
                 key: jax.Array) -> tuple[SACState, jax.Array]:
    """`value.updates_per_episode` SAC updates on uniform batches of the real buffer, the critic
    targets expanded through `model_state`. -> (state, mean critic loss [])."""
    if value.expansion_horizon > 0:
        targets_fn = make_targets_fn("mve", model, model_state, value.expansion_horizon,
                                     reward_fn, termination_fn)
    else:
        targets_fn = one_step_targets
    if not value.soft_targets:  # the policy's return without SAC's entropy bonus (TD-MPC2)
        targets_fn = functools.partial(_without_entropy, targets_fn)
    batch = value.sac.batch_size
    state, metrics = critic.update_many(
        state, lambda k: replay.sample(buffer, k, batch), key, value.updates_per_episode,
        targets_fn)
    return state, jnp.asarray(metrics["critic_loss"], jnp.float32)


def _without_entropy(targets_fn: TargetsFn, parts: Any, state: SACState, batch: Any,
                     alpha: jax.Array, key: jax.Array) -> CriticTargets:
    """`targets_fn`'s targets with temperature 0: rewards and bootstrapped Q only."""
    return targets_fn(parts, state, batch, jnp.zeros_like(alpha), key)


__all__ = ["make_critic", "train_critic"]
