"""PETS: probabilistic ensembles with trajectory sampling and MPC (Chua et al. 2018).

    from mbjax.agents import pets
    config = pets.preset("cartpole_swingup", "cpu")
    make_policy, final_state, records = pets.train("cartpole_swingup", config, seed=0)
    init_carry, policy = make_policy(final_state)                                # MPC policy
    final_state, metrics = jax.jit(jax.vmap(pets.make_train(config)))(keys)   # seed sweep

`pets.ALGORITHM` is its record for the CLI and sweeps (`mbjax.agents.get("pets")`).
"""

from mbjax.agents import driver
from mbjax.agents.algorithm import Algorithm
from mbjax.agents.pets.config import VARIANTS, Config, with_planner
from mbjax.agents.pets.policy import make_policy
from mbjax.agents.pets.presets import PRESETS, preset
from mbjax.agents.pets.train import (
    EpisodeMetrics,
    PETSState,
    grid_leaves,
    make_pets,
    make_program,
    make_train,
)

ALGORITHM = Algorithm(
    name="pets",
    config_class=Config,
    preset=preset,
    make_program=make_program,
    make_policy=make_policy,
    grid_leaves=grid_leaves,
    iteration_unit="episode",
    description="PETS: ensemble dynamics model + MPC with trajectory sampling (Chua et al. 2018)",
)

train = driver.bind(ALGORITHM)  # (env, config, *, seed, ...) -> (make_policy, state, records)


__all__ = [
    "ALGORITHM",
    "Config",
    "EpisodeMetrics",
    "PETSState",
    "PRESETS",
    "VARIANTS",
    "make_pets",
    "make_policy",
    "make_program",
    "make_train",
    "preset",
    "train",
    "with_planner",
]
