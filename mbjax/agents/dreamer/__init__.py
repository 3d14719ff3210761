"""Dreamer (Hafner et al. 2020) with DreamerV3's world model and actor-critic (Hafner et al.
2023), the whole run (env steps and updates) one compiled Program.

    from mbjax.agents import dreamer
    config = dreamer.preset("dmc/CartpoleBalance", "cpu")
    program = dreamer.make_program(config)          # run_host / run_sweep / make_pure_train
    _, metrics = jax.jit(jax.vmap(dreamer.make_train(config)))(keys)   # seeds in one program
    init_carry, policy = dreamer.make_policy(config, final_state)

Modules: `config` (Config), `presets`, `networks` (actor, critic, policy distributions),
`returns` (lambda-returns, percentile return normalisation), `behavior` (imagination and the
actor-critic update), `world_model` (one RSSM update on replayed sequences), `collect` (the
filter kept per env, env steps into replay), `train` (the Program).
"""

from mbjax.agents import driver
from mbjax.agents.algorithm import Algorithm
from mbjax.agents.dreamer.behavior import Behavior, BehaviorState, Hyper, make_behavior
from mbjax.agents.dreamer.config import Config
from mbjax.agents.dreamer.presets import PRESETS, preset
from mbjax.agents.dreamer.returns import (
    ReturnNorm,
    discount_weights,
    lambda_returns,
    return_scale,
    update_return_norm,
)
from mbjax.agents.dreamer.train import (
    DreamerState,
    IterationMetrics,
    grid_leaves,
    iteration_record,
    make_env,
    make_parts,
    make_policy,
    make_program,
    make_train,
)

ALGORITHM = Algorithm(
    name="dreamer",
    config_class=Config,
    preset=preset,
    make_program=make_program,
    make_policy=make_policy,
    grid_leaves=grid_leaves,
    make_env=make_env,
    iteration_unit="iteration",
    description="Dreamer: RSSM world model + actor-critic in imagination (DreamerV3 losses)",
    preset_names=("paper", "paper_vision", "cpu", "test"),
)

train = driver.bind(ALGORITHM)

__all__ = [
    "ALGORITHM", "PRESETS", "Behavior", "BehaviorState", "Config", "DreamerState", "Hyper",
    "IterationMetrics", "ReturnNorm", "discount_weights", "grid_leaves", "iteration_record",
    "lambda_returns", "make_behavior", "make_env", "make_parts", "make_policy", "make_program",
    "make_train", "preset", "return_scale", "train", "update_return_norm",
]
