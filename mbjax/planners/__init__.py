"""Planners: optimise action sequences [H, A] in [-1, 1] against an objective
`objective(actions: [N, H, A]) -> returns: [N]` (higher is better).

Every planner is a `Planner(init, plan, shift)` bundle (protocol in `mbjax.planners.base`):

    planner = make_planner("cem", horizon=15)            # or make_cem(CEMConfig(horizon=15))
    state = planner.init(action_size, key)
    actions, state, info = planner.plan(state, problem, obs, key)     # actions: [H, A]
    state = planner.shift(state, 1)                                   # after executing 1 action

`problem` is an objective callable or an object with an `.objective` attribute (e.g. a
`PlanningProblem`); see `objective_of`.

Numeric hyperparameters (CEM/iCEM `alpha`, iCEM `noise_beta`, MPPI `inverse_temperature` and
`noise_std`, gradient `learning_rate`) live in `state.hparams` as float32 leaves: changing them
does not retrace a jitted `plan`, and a grid over them is a vmap:

    alphas = jnp.array([0.05, 0.1, 0.2])
    grid = jax.vmap(lambda a: planner.plan(with_hparams(state, alpha=a), problem, obs, key))
    actions, states, info = grid(alphas)                             # actions: [3, H, A]

`ilqr` (iLQR/DDP, `mbjax.planners.ilqr`) plans on a problem's `step` and `reward` instead of its
objective; `mbjax.planners.lqr` has the LQR solvers it is built on (finite-horizon time-varying
Riccati, infinite-horizon gain).

Planners know nothing about models or environments: `mbjax.rollout` builds objectives.
"""

from __future__ import annotations

from typing import Any, Callable

from mbjax.planners.base import (
    Objective,
    Planner,
    PlannerState,
    Problem,
    objective_of,
    replace_config,
    with_hparams,
)
from mbjax.planners.cem import CEMConfig, CEMHParams, make_cem
from mbjax.planners.gradient import (
    CEMGradientConfig,
    CEMGradientHParams,
    GradientConfig,
    GradientHParams,
    make_cem_gradient,
    make_gradient,
)
from mbjax.planners.icem import ICEMConfig, ICEMHParams, ICEMState, make_icem
from mbjax.planners.ilqr import ILQRConfig, ILQRHParams, make_ilqr
from mbjax.planners.mppi import MPPIConfig, MPPIHParams, make_mppi
from mbjax.planners.noise import colored_noise
from mbjax.planners.shooting import ShootingConfig, make_shooting

# name -> (config class, factory)
PLANNERS: dict[str, tuple[type, Callable[[Any], Planner]]] = {
    "random_shooting": (ShootingConfig, make_shooting),
    "cem": (CEMConfig, make_cem),
    "icem": (ICEMConfig, make_icem),
    "mppi": (MPPIConfig, make_mppi),
    "gradient": (GradientConfig, make_gradient),
    "cem_gradient": (CEMGradientConfig, make_cem_gradient),
    "ilqr": (ILQRConfig, make_ilqr),
}


def planner_config(name: str, config: Any = None, **overrides: Any) -> Any:
    """The config for planner `name`: `config` (or the defaults) with `overrides` applied."""
    if name not in PLANNERS:
        raise ValueError(f"unknown planner {name!r}: known planners are {sorted(PLANNERS)}")
    cls, _ = PLANNERS[name]
    if config is None:
        config = cls()
    elif not isinstance(config, cls):
        raise ValueError(
            f"config for planner {name!r} is a {type(config).__name__}: allowed is {cls.__name__}"
        )
    return replace_config(config, **overrides) if overrides else config


def make_planner(name: str, config: Any = None, **overrides: Any) -> Planner:
    """Build planner `name` from `config` (default: the paper defaults) with field `overrides`.

    Unknown names, unknown fields and invalid values raise ValueError.
    """
    cfg = planner_config(name, config, **overrides)
    return PLANNERS[name][1](cfg)


__all__ = [
    "CEMConfig",
    "CEMGradientConfig",
    "CEMGradientHParams",
    "CEMHParams",
    "GradientConfig",
    "GradientHParams",
    "ICEMConfig",
    "ICEMHParams",
    "ICEMState",
    "ILQRConfig",
    "ILQRHParams",
    "MPPIConfig",
    "MPPIHParams",
    "Objective",
    "PLANNERS",
    "Planner",
    "PlannerState",
    "Problem",
    "ShootingConfig",
    "colored_noise",
    "make_cem",
    "make_cem_gradient",
    "make_gradient",
    "make_icem",
    "make_ilqr",
    "make_mppi",
    "make_planner",
    "make_shooting",
    "objective_of",
    "planner_config",
    "with_hparams",
]
