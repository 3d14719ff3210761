"""Random shooting: evaluate uniform random action sequences and keep the best one."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from mbjax.planners import base


@dataclasses.dataclass(frozen=True)
class ShootingConfig:
    """Random shooting (e.g. Nagabandi et al. 2018 use ~1000 candidates).

    horizon: H, planning horizon (static).
    population: N, uniform candidates in [-1, 1] per plan.
    include_warm_start: replace one candidate by the shifted previous solution, so the plan never
      gets worse than continuing the last one (costs no extra evaluation).
    """

    horizon: int = 25
    population: int = 1000
    include_warm_start: bool = True

    def __post_init__(self) -> None:
        base.check_positive_int(self, "horizon")
        base.check_positive_int(self, "population")
        base.check_bool(self, "include_warm_start")

    @property
    def trajectories_per_plan(self) -> int:
        return self.population


def make_shooting(config: ShootingConfig) -> base.Planner:
    """Random shooting planner; state is a `PlannerState` (std unused, kept for the protocol)."""
    cfg = config
    init_std = 1.0  # the std of nothing: uniform sampling ignores it

    def init(action_size: int, key: jax.Array) -> base.PlannerState:
        del key
        return base.init_state(cfg.horizon, action_size, init_std)

    def plan(
        state: base.PlannerState, objective: base.Objective, obs: Any, key: jax.Array
    ) -> tuple[jax.Array, base.PlannerState, dict]:
        """state: mean/std [H, A]; returns (actions [H, A], state (mean = solution), info)."""
        del obs
        base.check_state(state, cfg.horizon)
        shape = (cfg.population,) + state.mean.shape
        candidates = jax.random.uniform(
            key, shape, state.mean.dtype, base.ACTION_LOW, base.ACTION_HIGH
        )
        if cfg.include_warm_start:
            candidates = candidates.at[0].set(base.clip_actions(state.mean))
        returns = base.evaluate(objective, candidates)
        best = jnp.argmax(returns)
        actions = candidates[best]
        info = {
            "best_return": returns[best],
            "mean_return": jnp.mean(jnp.where(jnp.isfinite(returns), returns, 0.0)),
        }
        return actions, state.replace(mean=actions), info

    return base.Planner(init=init, plan=plan, shift=base.make_state_shift(init_std))
