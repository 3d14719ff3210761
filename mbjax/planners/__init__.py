"""Planners: optimise action sequences [H, A] in [-1, 1] against an objective
`objective(actions: [N, H, A]) -> returns: [N]` (higher is better).

Every planner is a `Planner(init, plan, shift)` bundle (protocol in `mbjax.planners.base`):

    planner = make_planner("cem", horizon=15)            # or make_cem(CEMConfig(horizon=15))
    state = planner.init(action_size, key)
    actions, state, info = planner.plan(state, objective, obs, key)   # actions: [H, A]
    state = planner.shift(state, 1)                                   # after executing 1 action

Planners know nothing about models or environments: `mbjax.rollout` builds objectives.
"""

from __future__ import annotations

from typing import Any, Callable

from mbjax.planners.base import Objective, Planner, PlannerState, replace_config
from mbjax.planners.cem import CEMConfig, make_cem
from mbjax.planners.gradient import (
    CEMGradientConfig,
    GradientConfig,
    make_cem_gradient,
    make_gradient,
)
from mbjax.planners.icem import ICEMConfig, ICEMState, make_icem
from mbjax.planners.mppi import MPPIConfig, make_mppi
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
    "GradientConfig",
    "ICEMConfig",
    "ICEMState",
    "MPPIConfig",
    "Objective",
    "PLANNERS",
    "Planner",
    "PlannerState",
    "ShootingConfig",
    "colored_noise",
    "make_cem",
    "make_cem_gradient",
    "make_gradient",
    "make_icem",
    "make_mppi",
    "make_planner",
    "make_shooting",
    "planner_config",
]
