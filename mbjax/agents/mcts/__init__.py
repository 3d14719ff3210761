"""MCTS planning agent (`--algo=mcts`): mctx MuZero / Gumbel MuZero search as MPC on a discrete
env, with the true env or a learned ensemble as the model (issue 17).

    from mbjax.agents import mcts
    config = mcts.preset("cartpole_discrete", "cpu")                    # true model
    config = mcts.preset("cartpole_discrete", "learned_cpu")            # learned ensemble
    make_policy, final_state, records = mcts.train("cartpole_discrete", config, seed=0)
"""

from mbjax.agents import driver
from mbjax.agents.algorithm import Algorithm
from mbjax.agents.mcts.config import MODELS, Config
from mbjax.agents.mcts.presets import PRESET_NAMES, PRESETS, learned, preset
from mbjax.agents.mcts.train import (
    Agent,
    EpisodeMetrics,
    Hyper,
    MCTSState,
    grid_leaves,
    make_agent,
    make_env,
    make_episode,
    make_init,
    make_policy,
    make_program,
    run_episode,
)

ALGORITHM = Algorithm(
    name="mcts",
    config_class=Config,
    preset=preset,
    make_program=make_program,
    make_policy=make_policy,
    grid_leaves=grid_leaves,
    make_env=make_env,
    iteration_unit="episode",
    preset_names=PRESET_NAMES,
    description="MCTS (mctx MuZero/Gumbel MuZero) MPC on discrete envs, true or learned model",
)

train = driver.bind(ALGORITHM)

__all__ = [
    "ALGORITHM", "Agent", "Config", "EpisodeMetrics", "Hyper", "MCTSState", "MODELS", "PRESETS",
    "grid_leaves", "learned", "make_agent", "make_env", "make_episode", "make_init",
    "make_policy", "make_program", "preset", "run_episode", "train",
]
