"""Embed to Control (`--algo=e2c`; Watter et al. 2015, "Embed to Control: A Locally Linear
Latent Dynamics Model for Control from Raw Images"): a VAE from pixel observations into a
low-dimensional Gaussian latent whose transition is locally linear, z' = A(z) z + B(z) u + o(z)
with A = I + v r^T, trained with the E2C losses on (x_t, u_t, x_{t+1}) image triples, and
controlled by iLQR-MPC (`mbjax.planners.ilqr`) in the latent towards the encoding of a goal image.

    from mbjax.agents import e2c
    config = e2c.preset("pendulum_swingup", "cpu")
    _, final_state, records = e2c.train("pendulum_swingup", config, seed=0)

Written here: no maintained JAX implementation exists. Layers are flax (the RSSM's conv
encoder/decoder), the optimiser optax, the planner mbjax's iLQR, the images mbjax's renderer.
"""

from mbjax.agents import driver
from mbjax.agents.algorithm import Algorithm
from mbjax.agents.e2c import states
from mbjax.agents.e2c.config import Config
from mbjax.agents.e2c.control import (
    GOAL_STATES,
    Controller,
    Costs,
    goal_observation,
    make_controller,
    make_latent_problem,
)
from mbjax.agents.e2c.model import (
    E2CNet,
    Gaussian,
    LossTerms,
    Transition,
    e2c_loss,
    kl_prediction_to_encoding,
    kl_to_standard_normal,
    mean_step,
    predicted_distribution,
    prediction_error,
)
from mbjax.agents.e2c.presets import PRESETS, preset
from mbjax.agents.e2c.train import (
    E2C,
    E2CState,
    Hyper,
    IterationMetrics,
    build,
    grid_leaves,
    make_env,
    make_iteration,
    make_policy,
    make_program,
    random_data,
)

ALGORITHM = Algorithm(
    name="e2c",
    config_class=Config,
    preset=preset,
    make_program=make_program,
    make_policy=make_policy,
    grid_leaves=grid_leaves,
    make_env=make_env,
    iteration_unit="iteration",
    description="Embed to Control: locally linear latent dynamics from pixels + latent iLQR-MPC "
                "(Watter et al. 2015)",
)

train = driver.bind(ALGORITHM)

__all__ = [
    "ALGORITHM", "E2C", "GOAL_STATES", "PRESETS", "Config", "Controller", "Costs", "E2CNet",
    "E2CState", "Gaussian", "Hyper", "IterationMetrics", "LossTerms", "Transition", "build",
    "e2c_loss", "goal_observation", "grid_leaves", "kl_prediction_to_encoding",
    "kl_to_standard_normal", "make_controller", "make_env", "make_iteration",
    "make_latent_problem", "make_policy", "make_program", "mean_step", "predicted_distribution",
    "prediction_error", "preset", "random_data", "states", "train",
]
