"""Model-based policy gradient (`--algo=mbppo`): PPO with GAE on imagined rollouts from real
states through a learned ensemble (one member per rollout), with ME-TRPO's rule that stops the
policy updates once fewer than `improvement_ratio` of the members see an improvement.

    config = mbppo.preset("cartpole_swingup", "cpu")
    make_policy, final_state, records = mbppo.train("cartpole_swingup", config)
"""

from mbjax.agents import driver
from mbjax.agents.algorithm import Algorithm
from mbjax.agents.mbppo.config import Config, PPOConfig
from mbjax.agents.mbppo.gae import gae
from mbjax.agents.mbppo.presets import PRESETS, preset
from mbjax.agents.mbppo.train import (
    EpisodeMetrics,
    MBPPOState,
    grid_leaves,
    make_env,
    make_policy,
    make_program,
)

ALGORITHM = Algorithm(
    name="mbppo",
    config_class=Config,
    preset=preset,
    make_program=make_program,
    make_policy=make_policy,
    grid_leaves=grid_leaves,
    make_env=make_env,
    iteration_unit="episode",
    description="MB-PPO: PPO on imagined ensemble rollouts with ME-TRPO's validation rule",
)

train = driver.bind(ALGORITHM)

__all__ = ["ALGORITHM", "PRESETS", "Config", "EpisodeMetrics", "MBPPOState", "PPOConfig", "gae",
           "grid_leaves", "make_env", "make_policy", "make_program", "preset", "train"]
