"""Cross-entropy method (CEM) as used by PETS: Gaussian sampling, elites, momentum, std bounds.

Hyperparameters as leaves: `alpha` is a float32 leaf of the state (`state.hparams.alpha`, a
`CEMHParams`), so a grid over it is a vmap without recompiling:

    state = planner.init(action_size, key)
    grid = jax.vmap(lambda a: planner.plan(base.with_hparams(state, alpha=a), problem, obs, key))
    actions, states, info = grid(jnp.array([0.05, 0.1, 0.2]))        # actions: [3, H, A]

The sizes, std bounds, `sampling`, `return_best` and `keep_std` stay static config.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

from mbjax import validation
from mbjax.planners import base


@dataclasses.dataclass(frozen=True)
class CEMConfig:
    """CEM; defaults are PETS' cartpole settings (Chua et al. 2018): 400 / 40 / 5 / alpha 0.1, H 25.

    horizon: H (static). population: N candidates per iteration. num_elites: K best kept.
    iterations: CEM iterations per plan (a `lax.scan`).
    alpha: momentum, `new = alpha * old + (1 - alpha) * elite_statistic` on mean and variance
      (PETS' alpha = 0.1). The default of `state.hparams.alpha`.
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
        base.validate_elite_sampler(self)
        validation.field_choice(self, "sampling", ("truncated", "clip"))
        validation.field_bool(self, "return_best")
        validation.field_bool(self, "keep_std")

    @property
    def trajectories_per_plan(self) -> int:
        return self.population * self.iterations


@struct.dataclass
class CEMHParams:
    """CEM's numeric hyperparameters in the state: alpha [] float32 (see `CEMConfig.alpha`)."""

    alpha: jax.Array


class CEMCarry(NamedTuple):
    """The `lax.scan` carry of the CEM iterations.

    mean, std: [H, A] sampling distribution. best_actions: [H, A], best_return: [] best sample
    seen so far. elites: [K, H, A] and elite_returns: [K] of the latest iteration.
    """

    mean: jax.Array
    std: jax.Array
    best_actions: jax.Array
    best_return: jax.Array
    elites: jax.Array
    elite_returns: jax.Array


class CEMResult(NamedTuple):
    """Outcome of `run_cem`: `final` the last `CEMCarry`, `info` per-iteration arrays [I],
    `next_std` [H, A] the std the next plan starts from."""

    final: CEMCarry
    info: dict
    next_std: jax.Array


def cem_iterations(
    cfg: CEMConfig,
    alpha: jax.Array,
    mean: jax.Array,
    std: jax.Array,
    objective: base.Objective,
    key: jax.Array,
) -> tuple[CEMCarry, dict]:
    """Run `cfg.iterations` CEM updates from mean/std [H, A] as one `lax.scan`.

    alpha: [] momentum (may be traced; `cfg.alpha` is not read here).
    Returns the final carry and per-iteration info arrays [I].
    """
    k = cfg.num_elites
    truncated = cfg.sampling == "truncated"

    def iteration(carry: CEMCarry, it_key: jax.Array) -> tuple[CEMCarry, dict]:
        samples = base.sample_gaussian(it_key, carry.mean, carry.std, cfg.population, truncated)
        returns = base.evaluate(objective, samples)
        elite_r, idx = jax.lax.top_k(returns, k)
        elites = samples[idx]
        mean = alpha * carry.mean + (1.0 - alpha) * elites.mean(axis=0)
        # PETS applies the momentum to the variance (iCEM applies it to the std).
        var = alpha * jnp.square(carry.std) + (1.0 - alpha) * elites.var(axis=0)
        std = jnp.clip(jnp.sqrt(var), cfg.min_std, cfg.max_std)
        best_a, best_r = base.update_best(
            carry.best_actions, carry.best_return, elites[0], elite_r[0]
        )
        out = {
            "elite_return": elite_r.mean(),
            "iteration_best_return": elite_r[0],
            "mean_std": std.mean(),
        }
        return CEMCarry(mean, std, best_a, best_r, elites, elite_r), out

    horizon, action_size = mean.shape
    init = CEMCarry(
        mean=mean,
        std=std,
        best_actions=mean,
        best_return=jnp.asarray(-jnp.inf, mean.dtype),
        elites=jnp.zeros((k, horizon, action_size), mean.dtype),
        elite_returns=jnp.full((k,), -jnp.inf, mean.dtype),
    )
    keys = jax.random.split(key, cfg.iterations)
    return jax.lax.scan(iteration, init, keys)


def run_cem(
    cfg: CEMConfig, state: base.PlannerState, objective: base.Objective, key: jax.Array
) -> CEMResult:
    """CEM from the warm start `state` (its hparams have an `alpha`), shared by CEM and CEM +
    gradient; `next_std` is the final std when `keep_std`, else init_std (PETS)."""
    mean = base.warm_mean(state, cfg.horizon)
    std = jnp.clip(state.std, cfg.min_std, cfg.max_std)
    final, info = cem_iterations(cfg, state.hparams.alpha, mean, std, objective, key)
    next_std = final.std if cfg.keep_std else jnp.full_like(final.std, cfg.init_std)
    return CEMResult(final, info, next_std)


def make_cem(config: CEMConfig) -> base.Planner:
    """CEM planner; state is a `PlannerState` (mean/std [H, A], hparams `CEMHParams`)."""
    cfg = config

    def plan(
        state: base.PlannerState, problem: base.Problem, obs: Any, key: jax.Array
    ) -> tuple[jax.Array, base.PlannerState, dict]:
        """Returns (actions [H, A], state with mean = final CEM mean, info)."""
        del obs
        res = run_cem(cfg, state, base.objective_of(problem), key)
        final = res.final
        actions = final.best_actions if cfg.return_best else final.mean
        info = dict(res.info, best_return=final.best_return)
        return actions, state.replace(mean=final.mean, std=res.next_std), info

    init = base.make_init(cfg.horizon, cfg.init_std, CEMHParams(alpha=cfg.alpha))
    return base.Planner(init=init, plan=plan, shift=base.make_state_shift(cfg.init_std))
