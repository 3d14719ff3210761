"""PlaNet: MPC in the latent space of a learned RSSM (Hafner et al. 2019).

    from mbjax.agents import planet
    config = planet.preset("cartpole_swingup", "cpu")
    make_policy, final_state, records = planet.train("cartpole_swingup", config, seed=0)
    init_carry, policy = make_policy(final_state)        # filter + plan, no exploration noise
    final_state, metrics = jax.jit(jax.vmap(planet.make_train(config)))(keys)   # seed sweep

The RSSM is `mbjax.models.rssm`, the latent objective `mbjax.rollout.make_model_objective` with
the RSSM as the model, the planner any of `mbjax.planners` (CEM by default).
`planet.ALGORITHM` is its record for the CLI and sweeps (`mbjax.agents.get("planet")`).
"""

from mbjax.agents import driver
from mbjax.agents.algorithm import Algorithm
from mbjax.agents.planet.config import Config
from mbjax.agents.planet.policy import make_policy
from mbjax.agents.planet.presets import PRESETS, preset
from mbjax.agents.planet.train import (
    AgentCarry,
    EpisodeMetrics,
    PlaNetState,
    grid_leaves,
    make_env,
    make_planet,
    make_program,
    make_train,
)

ALGORITHM = Algorithm(
    name="planet",
    config_class=Config,
    preset=preset,
    make_program=make_program,
    make_policy=make_policy,
    grid_leaves=grid_leaves,
    make_env=make_env,
    iteration_unit="episode",
    description="PlaNet: RSSM world model + CEM/iCEM/MPPI planning in its latent space "
                "(Hafner et al. 2019)",
)

train = driver.bind(ALGORITHM)  # (env, config, *, seed, ...) -> (make_policy, state, records)

__all__ = [
    "ALGORITHM", "AgentCarry", "Config", "EpisodeMetrics", "PRESETS", "PlaNetState", "grid_leaves",
    "make_env", "make_planet", "make_policy", "make_program", "make_train", "preset", "train",
]
