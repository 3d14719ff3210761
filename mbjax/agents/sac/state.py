"""The SAC learner's state pytrees: `SACState` (what `update` changes), `ActorParams` (what
`act` reads) and `SACHyperparams` (numeric settings kept as leaves)."""

from __future__ import annotations

from typing import Any

import jax
import optax
from flax import struct

from mbjax.agents.sac import normalizer as obs_normalizer

Params = Any


@struct.dataclass
class SACHyperparams:
    """Numeric hyperparameters kept as float32 leaves so that sweeps can vmap over them."""

    discount: jax.Array
    tau: jax.Array
    reward_scale: jax.Array
    target_entropy: jax.Array


@struct.dataclass
class ActorParams:
    """Everything `act` needs: policy weights and the observation statistics."""

    policy: Params
    obs_norm: obs_normalizer.RunningMeanStd


@struct.dataclass
class SACState:
    """Learner state. Learning rates live in the optimizer states (optax.inject_hyperparams)."""

    policy_params: Params
    critic_params: Params  # leaves [C, ...]
    target_critic_params: Params  # leaves [C, ...]
    policy_opt_state: optax.OptState
    critic_opt_state: optax.OptState
    alpha_opt_state: optax.OptState
    log_alpha: jax.Array  # []
    obs_norm: obs_normalizer.RunningMeanStd
    hparams: SACHyperparams
    step: jax.Array  # [] int32, number of updates applied

    @property
    def actor_params(self) -> ActorParams:
        return ActorParams(policy=self.policy_params, obs_norm=self.obs_norm)
