"""MBPO: model-based policy optimization (Janner et al. 2019), the lecture notes' "model-based
RL version 3.0": short ensemble rollouts branched from real states train a SAC agent.

    from mbjax.agents import mbpo
    config = mbpo.preset("brax/inverted_pendulum", "cpu")
    make_policy, actor_params, records = mbpo.train("brax/inverted_pendulum", config, seed=0)
    final_state, metrics = jax.jit(jax.vmap(mbpo.make_train(config)))(keys)   # seed sweep

`Config(use_model=False, real_ratio=1.0)` runs SAC alone on the same loop.
"""

from mbjax.agents.mbpo import driver
from mbjax.agents.mbpo.config import Config
from mbjax.agents.mbpo.driver import train
from mbjax.agents.mbpo.presets import PRESETS, preset, sac_alone
from mbjax.agents.mbpo.rollouts import make_model_rollout, rollout_length, sample_recent
from mbjax.agents.mbpo.train import (
    MBPO,
    EpochMetrics,
    MBPOState,
    make_mbpo,
    make_program,
    make_train,
)

__all__ = [
    "MBPO",
    "Config",
    "EpochMetrics",
    "MBPOState",
    "PRESETS",
    "driver",
    "make_mbpo",
    "make_model_rollout",
    "make_program",
    "make_train",
    "preset",
    "rollout_length",
    "sac_alone",
    "sample_recent",
    "train",
]
