"""MBPO: model-based policy optimization (Janner et al. 2019), the lecture notes' "model-based
RL version 3.0": short ensemble rollouts branched from real states train a SAC agent.

    from mbjax.agents import mbpo
    config = mbpo.preset("brax/inverted_pendulum", "cpu")
    make_policy, final_state, records = mbpo.train("brax/inverted_pendulum", config, seed=0)
    init_carry, policy = make_policy(final_state)                        # the SAC actor
    final_state, metrics = jax.jit(jax.vmap(mbpo.make_train(config)))(keys)   # seed sweep

`sac_alone(config)` is the `sac.Config` of SAC alone on the same env, budget and SAC settings
(the loop MBPO extends with model blocks). `mbpo.ALGORITHM` is
its record for the CLI and sweeps (`mbjax.agents.get("mbpo")`); one iteration is an epoch.
"""

from mbjax.agents import driver
from mbjax.agents.algorithm import Algorithm
from mbjax.agents.mbpo.config import Config
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
from mbjax.agents.sac import make_policy  # MBPO acts with its SAC actor, as SAC alone does
from mbjax.agents.sac.leaves import sac_leaves
from mbjax.grid import model_leaves


def grid_leaves(config: Config) -> dict:
    """MBPO's grid fields: SAC's numeric hyperparameters and the ensemble's learning rate."""
    del config
    return {**sac_leaves(), **model_leaves()}


ALGORITHM = Algorithm(
    name="mbpo",
    config_class=Config,
    preset=preset,
    make_program=make_program,
    make_policy=make_policy,
    grid_leaves=grid_leaves,
    iteration_unit="epoch",
    description="MBPO: short ensemble rollouts from real states train SAC (Janner et al. 2019)",
)

train = driver.bind(ALGORITHM)  # (env, config, *, seed, ...) -> (make_policy, state, records)


__all__ = [
    "ALGORITHM",
    "MBPO",
    "Config",
    "EpochMetrics",
    "MBPOState",
    "PRESETS",
    "make_mbpo",
    "make_model_rollout",
    "make_policy",
    "make_program",
    "make_train",
    "preset",
    "rollout_length",
    "sac_alone",
    "sample_recent",
    "train",
]
