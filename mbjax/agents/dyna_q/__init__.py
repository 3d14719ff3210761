"""Dyna-Q and Dyna-Q+ (Sutton & Barto 2018, 8.2-8.3): tabular Q-learning with a tabular model
and n planning updates per real step, on the discrete mazes (`maze/dyna`, `maze/blocking`,
`maze/shortcut`).

    from mbjax.agents import dyna_q
    config = dyna_q.preset("maze/dyna", "cpu")
    program = dyna_q.make_program(config)
    train = make_pure_train(program); jax.jit(jax.vmap(train))(keys)   # 30 runs at once
"""

from mbjax.agents import driver
from mbjax.agents.algorithm import Algorithm
from mbjax.agents.dyna_q.config import Config
from mbjax.agents.dyna_q.presets import PRESETS, preset
from mbjax.agents.dyna_q.train import (
    DynaState,
    EpisodeMetrics,
    Hyper,
    TabularModel,
    bonus,
    empty_model,
    epsilon_greedy,
    greedy,
    grid_leaves,
    make_env,
    make_episode,
    make_init,
    make_policy,
    make_program,
    make_real_step,
    make_step_block,
    plan,
    planning_transition,
    q_update,
    record,
)

ALGORITHM = Algorithm(
    name="dyna_q",
    config_class=Config,
    preset=preset,
    make_program=make_program,
    make_policy=make_policy,
    grid_leaves=grid_leaves,
    make_env=make_env,
    iteration_unit="episode",
    description="Dyna-Q / Dyna-Q+ with tabular Q and model on discrete mazes (Sutton & Barto 8.2)",
)

train = driver.bind(ALGORITHM)

__all__ = [
    "ALGORITHM", "PRESETS", "Config", "DynaState", "EpisodeMetrics", "Hyper", "TabularModel",
    "bonus", "empty_model", "epsilon_greedy", "greedy", "grid_leaves", "make_env",
    "make_episode", "make_init", "make_policy", "make_program", "make_real_step",
    "make_step_block", "plan", "planning_transition", "preset", "q_update", "record", "train",
]
