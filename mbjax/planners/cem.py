"""Cross-entropy method (CEM) as used by PETS: Gaussian sampling, elites, momentum, std bounds."""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from mbjax.planners import base


@dataclasses.dataclass(frozen=True)
class CEMConfig:
    """CEM; defaults are PETS' cartpole settings (Chua et al. 2018): 400 / 40 / 5 / alpha 0.1, H 25.

    horizon: H (static). population: N candidates per iteration. num_elites: K best kept.
    iterations: CEM iterations per plan (a `lax.scan`).
    alpha: momentum, `new = alpha * old + (1 - alpha) * elite_statistic` on mean and variance
      (PETS' alpha = 0.1).
    init_std: initial std; 0.5 = sqrt((ub - lb)^2 / 16), PETS' initial variance for [-1, 1].
    min_std, max_std: bounds on the std after each update (min_std > 0 keeps sampling finite).
    sampling: "truncated" (normal truncated to [-1, 1], PETS) or "clip" (sample, then clip).
    return_best: return the best sample seen instead of the final mean (PETS returns the mean).
    keep_std: warm-start the std as well; False resets it to init_std every plan (PETS).
    """

    horizon: int = 25
    population: int = 400
    num_elites: int = 40
    iterations: int = 5
    alpha: float = 0.1
    init_std: float = 0.5
    min_std: float = 1e-3
    max_std: float = 2.0
    sampling: str = "truncated"
    return_best: bool = False
    keep_std: bool = False

    def __post_init__(self) -> None:
        for name in ("horizon", "population", "num_elites", "iterations"):
            base.check_positive_int(self, name)
        if self.num_elites > self.population:
            raise ValueError(
                f"CEMConfig.num_elites={self.num_elites} is invalid: allowed is 1 <= num_elites "
                f"<= population={self.population}"
            )
        base.check_range(self, "alpha", 0.0, 1.0, high_open=True)
        base.check_std_bounds(self)
        base.check_choice(self, "sampling", ("truncated", "clip"))
        base.check_bool(self, "return_best")
        base.check_bool(self, "keep_std")

    @property
    def trajectories_per_plan(self) -> int:
        return self.population * self.iterations


class CEMResult(NamedTuple):
    """Outcome of the CEM iterations.

    mean, std: [H, A] final sampling distribution. best_actions: [H, A], best_return: [] best
    sample seen. elites: [K, H, A] and elite_returns: [K] of the last iteration.
    info: per-iteration arrays [I].
    """

    mean: jax.Array
    std: jax.Array
    best_actions: jax.Array
    best_return: jax.Array
    elites: jax.Array
    elite_returns: jax.Array
    info: dict


def cem_iterations(
    cfg: CEMConfig, mean: jax.Array, std: jax.Array, objective: base.Objective, key: jax.Array
) -> CEMResult:
    """Run `cfg.iterations` CEM updates from mean/std [H, A] as one `lax.scan`."""
    k = cfg.num_elites
    truncated = cfg.sampling == "truncated"

    def iteration(carry, it_key):
        mean, std, best_a, best_r, _, _ = carry
        samples = base.sample_gaussian(it_key, mean, std, cfg.population, truncated)
        returns = base.evaluate(objective, samples)
        elite_r, idx = jax.lax.top_k(returns, k)
        elites = samples[idx]
        new_mean = elites.mean(axis=0)
        new_var = elites.var(axis=0)
        mean = cfg.alpha * mean + (1.0 - cfg.alpha) * new_mean
        # PETS applies the momentum to the variance (iCEM applies it to the std).
        var = cfg.alpha * jnp.square(std) + (1.0 - cfg.alpha) * new_var
        std = jnp.clip(jnp.sqrt(var), cfg.min_std, cfg.max_std)
        better = elite_r[0] > best_r
        best_a = jnp.where(better, elites[0], best_a)
        best_r = jnp.where(better, elite_r[0], best_r)
        out = {
            "elite_return": elite_r.mean(),
            "iteration_best_return": elite_r[0],
            "mean_std": std.mean(),
        }
        return (mean, std, best_a, best_r, elites, elite_r), out

    horizon, action_size = mean.shape
    init = (
        mean,
        std,
        mean,
        jnp.asarray(-jnp.inf, mean.dtype),
        jnp.zeros((k, horizon, action_size), mean.dtype),
        jnp.full((k,), -jnp.inf, mean.dtype),
    )
    keys = jax.random.split(key, cfg.iterations)
    (mean, std, best_a, best_r, elites, elite_r), info = jax.lax.scan(iteration, init, keys)
    return CEMResult(mean, std, best_a, best_r, elites, elite_r, info)


def make_cem(config: CEMConfig) -> base.Planner:
    """CEM planner; state is a `PlannerState` (mean/std [H, A])."""
    cfg = config

    def init(action_size: int, key: jax.Array) -> base.PlannerState:
        del key
        return base.init_state(cfg.horizon, action_size, cfg.init_std)

    def plan(
        state: base.PlannerState, objective: base.Objective, obs: Any, key: jax.Array
    ) -> tuple[jax.Array, base.PlannerState, dict]:
        """Returns (actions [H, A], state with mean = final CEM mean, info)."""
        del obs
        base.check_state(state, cfg.horizon)
        mean = base.clip_actions(state.mean)
        std = jnp.clip(state.std, cfg.min_std, cfg.max_std)
        res = cem_iterations(cfg, mean, std, objective, key)
        actions = res.best_actions if cfg.return_best else res.mean
        next_std = res.std if cfg.keep_std else jnp.full_like(res.std, cfg.init_std)
        info = dict(res.info, best_return=res.best_return)
        return actions, state.replace(mean=res.mean, std=next_std), info

    return base.Planner(init=init, plan=plan, shift=base.make_state_shift(cfg.init_std))
