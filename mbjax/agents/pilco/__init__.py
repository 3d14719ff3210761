"""PILCO (Deisenroth & Rasmussen 2011): GP dynamics, analytic moment-matched long-term
prediction and policy search by the gradient of the expected cost.

    from mbjax.agents import pilco
    config = pilco.preset("cartpole_swingup", "cpu")
    make_policy, final_state, records = pilco.train("cartpole_swingup", config, seed=0)

Task: mbjax's `cartpole_swingup` with action_repeat 3 (a 0.12 s control period, close to the
toolbox's 0.1 s); `tasks.TASKS` says how an env's observation maps to PILCO's state.
"""

from mbjax.agents import driver
from mbjax.agents.algorithm import Algorithm
from mbjax.agents.pilco.config import Config
from mbjax.agents.pilco.presets import PRESETS, preset
from mbjax.agents.pilco.propagation import Prediction, TaskSpec, predict_trajectory, step_moments
from mbjax.agents.pilco.tasks import TASKS, task_spec
from mbjax.agents.pilco.train import (
    EpisodeMetrics,
    Hyper,
    PilcoState,
    act,
    grid_leaves,
    make_env,
    make_policy,
    make_program,
    optimise_policy,
)

ALGORITHM = Algorithm(
    name="pilco",
    config_class=Config,
    preset=preset,
    make_program=make_program,
    make_policy=make_policy,
    grid_leaves=grid_leaves,
    make_env=make_env,
    iteration_unit="episode",
    description="PILCO: GP dynamics, moment-matched prediction, analytic policy gradients",
)

train = driver.bind(ALGORITHM)

__all__ = [
    "ALGORITHM", "PRESETS", "TASKS", "Config", "EpisodeMetrics", "Hyper", "PilcoState",
    "Prediction", "TaskSpec", "act", "grid_leaves", "make_env", "make_policy", "make_program",
    "optimise_policy", "predict_trajectory", "preset", "step_moments", "task_spec", "train",
]
