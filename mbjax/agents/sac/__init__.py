"""Soft actor-critic: a reusable learner (`make_sac`) and SAC alone as an algorithm.

    from mbjax.agents import sac
    config = sac.preset("point_mass", "test")
    program = sac.make_program(config)               # a Program (mbjax.agents.program)
    _, metrics = jax.jit(jax.vmap(sac.make_train(config)))(keys)   # seed sweep
    init_carry, policy = sac.make_policy(config, final_state)

MBPO composes the same loop (`make_loop`) with model blocks and mixed real/model batches.
`--config.value_expansion=mve|steve` (MVE / STEVE, `expansion.py`) expands the critics' targets
through an ensemble refitted on the real data (`expansion_loop.py`).
`sac.ALGORITHM` is its record for the CLI and sweeps (`mbjax.agents.get("sac")`).
"""

from mbjax.agents import driver
from mbjax.agents.algorithm import Algorithm
from mbjax.agents.sac.config import Config, ExpansionConfig, SACConfig
from mbjax.agents.sac.learner import (
    SAC,
    ActorParams,
    SACHyperparams,
    SACState,
    make_sac,
    with_learning_rates,
)
from mbjax.agents.sac.leaves import grid_leaves
from mbjax.agents.sac.losses import SACNetworks
from mbjax.agents.sac.normalizer import RunningMeanStd
from mbjax.agents.sac.presets import PRESETS, preset
from mbjax.agents.sac.train import (
    EpochMetrics,
    SACLoop,
    TrainState,
    actor_policy,
    epoch_record,
    make_loop,
    make_policy,
    make_program,
    make_train,
)

ALGORITHM = Algorithm(
    name="sac",
    config_class=Config,
    preset=preset,
    make_program=make_program,
    make_policy=make_policy,
    grid_leaves=grid_leaves,
    iteration_unit="epoch",
    description="SAC alone on real environment steps (Haarnoja et al. 2018)",
)

train = driver.bind(ALGORITHM)  # (env, config, *, seed, ...) -> (make_policy, state, records)

__all__ = [
    "ALGORITHM",
    "PRESETS",
    "SAC",
    "ActorParams",
    "Config",
    "EpochMetrics",
    "ExpansionConfig",
    "RunningMeanStd",
    "SACConfig",
    "SACHyperparams",
    "SACLoop",
    "SACNetworks",
    "SACState",
    "TrainState",
    "actor_policy",
    "epoch_record",
    "make_loop",
    "make_policy",
    "make_program",
    "make_sac",
    "make_train",
    "preset",
    "train",
    "with_learning_rates",
]
