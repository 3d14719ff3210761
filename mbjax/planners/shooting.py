"""Random shooting: evaluate uniform random action sequences and keep the best one."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from mbjax import validation
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
        validation.field_int(self, "horizon")
        validation.field_int(self, "population")
        validation.field_bool(self, "include_warm_start")

    @property
    def trajectories_per_plan(self) -> int:
        return self.population


def make_shooting(config: ShootingConfig) -> base.Planner:
    """Random shooting planner; state is a `PlannerState` (std unused, kept for the protocol;
    no numeric hyperparameters: hparams is None)."""
    cfg = config
    init_std = 1.0  # the std of nothing: uniform sampling ignores it

    def plan(
        state: base.PlannerState, problem: base.Problem, obs: Any, key: jax.Array
    ) -> tuple[jax.Array, base.PlannerState, dict]:
        """state: mean/std [H, A]; returns (actions [H, A], state (mean = solution), info)."""
        del obs
        warm = base.warm_mean(state, cfg.horizon)
        shape = (cfg.population,) + warm.shape
        candidates = jax.random.uniform(key, shape, warm.dtype, base.ACTION_LOW, base.ACTION_HIGH)
        if cfg.include_warm_start:
            candidates = candidates.at[0].set(warm)
        returns = base.evaluate(base.objective_of(problem), candidates)
        best = jnp.argmax(returns)
        actions = candidates[best]
        info = {
            "best_return": returns[best],
            "mean_return": jnp.mean(jnp.where(jnp.isfinite(returns), returns, 0.0)),
        }
        return actions, state.replace(mean=actions), info

    init = base.make_init(cfg.horizon, init_std)
    return base.Planner(init=init, plan=plan, shift=base.make_state_shift(init_std))
