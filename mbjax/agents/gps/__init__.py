"""Guided policy search (`--algo=gps`): per-step linear-Gaussian dynamics with a
normal-inverse-Wishart prior, KL-bounded LQR updates of linear-Gaussian controllers with the
dual variable found by bisection and the step size adapted from predicted vs actual improvement
(Levine & Abbeel 2014, "Learning Neural Network Policies with Guided Policy Search under Unknown
Dynamics"), and a neural policy trained by precision-weighted supervised regression onto the
controllers (Levine et al. 2016, "End-to-End Training of Deep Visuomotor Policies").

    from mbjax.agents import gps
    config = gps.preset("cartpole_balance", "cpu")
    _, final_state, records = gps.train("cartpole_balance", config, seed=0)

Written here: no maintained JAX implementation exists (the reference `gps` code is NumPy/Caffe);
the Riccati recursion is `mbjax.planners.lqr.lqr_solve`, layers are flax, the optimiser optax.
"""

from mbjax.agents import driver
from mbjax.agents.algorithm import Algorithm
from mbjax.agents.gps.config import Config
from mbjax.agents.gps.dynamics import (
    LinearGaussianDynamics,
    Moments,
    NIWPrior,
    condition,
    fit_dynamics,
    global_prior,
    merge_moments,
    moments_of,
    niw_posterior,
)
from mbjax.agents.gps.presets import PRESETS, preset
from mbjax.agents.gps.train import (
    GPSState,
    Hyper,
    IterationMetrics,
    grid_leaves,
    make_env,
    make_iteration,
    make_policy,
    make_program,
    rollout,
)
from mbjax.agents.gps.trajectory import (
    Controller,
    QuadraticCost,
    TrajectoryDistribution,
    adjust_step,
    expand_cost,
    expected_cost,
    forward,
    kl_per_step,
    solve_eta,
)

ALGORITHM = Algorithm(
    name="gps",
    config_class=Config,
    preset=preset,
    make_program=make_program,
    make_policy=make_policy,
    grid_leaves=grid_leaves,
    make_env=make_env,
    iteration_unit="iteration",
    description="guided policy search: linear-Gaussian controllers under a KL bound + neural "
                "policy regression (Levine & Abbeel 2014)",
)

train = driver.bind(ALGORITHM)

__all__ = [
    "ALGORITHM", "PRESETS", "Config", "Controller", "GPSState", "Hyper", "IterationMetrics",
    "LinearGaussianDynamics", "Moments", "NIWPrior", "QuadraticCost", "TrajectoryDistribution",
    "adjust_step", "condition", "expand_cost", "expected_cost", "fit_dynamics", "forward",
    "global_prior", "grid_leaves", "kl_per_step", "make_env", "make_iteration", "make_policy",
    "make_program", "merge_moments", "moments_of", "niw_posterior", "preset", "rollout",
    "solve_eta", "train",
]
