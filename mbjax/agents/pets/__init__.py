"""PETS: probabilistic ensembles with trajectory sampling and MPC (Chua et al. 2018).

    from mbjax.agents import pets
    config = pets.preset("cartpole_swingup", "cpu")
    make_policy, model_state, records = pets.train("cartpole_swingup", config, seed=0)
    final_state, metrics = jax.jit(jax.vmap(pets.make_train(config)))(keys)   # seed sweep
"""

from mbjax.agents.pets.config import VARIANTS, Config, with_planner
from mbjax.agents.pets.driver import train
from mbjax.agents.pets.presets import PRESETS, preset
from mbjax.agents.pets.train import EpisodeMetrics, PETSState, make_pets, make_program, make_train

__all__ = [
    "Config",
    "EpisodeMetrics",
    "PETSState",
    "PRESETS",
    "VARIANTS",
    "make_pets",
    "make_program",
    "make_train",
    "preset",
    "train",
    "with_planner",
]
