"""MPPI (Williams et al. 2016; the PDDM variant of Nagabandi et al. 2019 with smoothed noise).

Hyperparameters as leaves: `inverse_temperature` and `noise_std` are float32 leaves of the state
(`state.hparams`, an `MPPIHParams`); a grid over them is a vmap without recompiling:

    state = planner.init(action_size, key)
    grid = jax.vmap(
        lambda g: planner.plan(base.with_hparams(state, inverse_temperature=g), problem, obs, key)
    )
    actions, states, info = grid(jnp.array([1.0, 10.0, 100.0]))       # actions: [3, H, A]

The sizes, `smoothing` (it builds a static filter matrix) and `per_step_weighting` stay static.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from mbjax import validation
from mbjax.planners import base


@dataclasses.dataclass(frozen=True)
class MPPIConfig:
    """MPPI: exponentially weighted average of noisy perturbations of the warm start.

    horizon: H (static). population: N samples per iteration (TD-MPC2 uses 512).
    iterations: weighted-average updates per plan (classic MPPI/PDDM: 1; TD-MPC2: 6).
    inverse_temperature: gamma in w_n ~ exp(gamma * (R_n - max R)), i.e. 1 / lambda of MPPI;
      scale-dependent (PDDM's reward weighting is 10).
    noise_std: sigma of the white Gaussian noise before smoothing (fixed, not adapted); the
      smoothed perturbations have std noise_std * beta / sqrt(1 - (1 - beta)^2) in steady state.
    inverse_temperature and noise_std are the defaults of `state.hparams`.
    smoothing: beta of PDDM's noise filter n_t = beta * u_t + (1 - beta) * n_{t-1} along H
      (1.0 = white noise, smaller = smoother sequences).
    per_step_weighting: weight each time step t by the reward-to-go sum_{s >= t} r_s of each
      sample instead of by its total return; needs an objective returning per-step rewards [N, H].
    Samples are clipped to [-1, 1] and the clipped samples are averaged, so the mean stays inside.
    """

    horizon: int = 25
    population: int = 512
    iterations: int = 1
    inverse_temperature: float = 10.0
    noise_std: float = 0.5
    smoothing: float = 0.6
    per_step_weighting: bool = False

    def __post_init__(self) -> None:
        for name in ("horizon", "population", "iterations"):
            validation.field_int(self, name)
        validation.field_float(self, "inverse_temperature", 0.0)
        validation.field_float(self, "noise_std", 0.0, lo_open=True)
        validation.field_float(self, "smoothing", 0.0, 1.0, lo_open=True)
        validation.field_bool(self, "per_step_weighting")

    @property
    def trajectories_per_plan(self) -> int:
        return self.population * self.iterations


@struct.dataclass
class MPPIHParams:
    """MPPI's numeric hyperparameters in the state, float32 []: inverse_temperature, noise_std
    (see `MPPIConfig`)."""

    inverse_temperature: jax.Array
    noise_std: jax.Array


def smoothing_matrix(horizon: int, beta: float) -> np.ndarray:
    """[H, H] lower-triangular L[t, s] = beta (1 - beta)^(t - s): the PDDM filter as a matmul."""
    t = np.arange(horizon)
    lag = t[:, None] - t[None, :]
    return np.where(lag >= 0, beta * (1.0 - beta) ** np.maximum(lag, 0), 0.0).astype(np.float32)


def make_mppi(config: MPPIConfig) -> base.Planner:
    """MPPI planner; state is a `PlannerState` (hparams `MPPIHParams`; std is unused by MPPI and
    stays at the config's noise_std, kept for the protocol)."""
    cfg = config
    filt = smoothing_matrix(cfg.horizon, cfg.smoothing)

    def weights(returns: jax.Array, inverse_temperature: jax.Array) -> jax.Array:
        """returns [N] or [N, H] -> normalised weights over N of the same shape."""
        # NaN/-inf returns get a huge finite penalty: never weighted unless all samples failed,
        # in which case the weights are uniform rather than NaN.
        finite = jnp.where(jnp.isnan(returns) | jnp.isneginf(returns), -1e30, returns)
        return jax.nn.softmax(inverse_temperature * finite, axis=0)

    def plan(
        state: base.PlannerState, problem: base.Problem, obs: Any, key: jax.Array
    ) -> tuple[jax.Array, base.PlannerState, dict]:
        """Returns (actions [H, A], state with mean = weighted mean, info)."""
        del obs
        objective = base.objective_of(problem)
        hp = state.hparams

        def iteration(mean, it_key):
            white = jax.random.normal(it_key, (cfg.population,) + mean.shape, mean.dtype)
            noise = jnp.einsum("ts,nsa->nta", filt, white) * hp.noise_std
            samples = base.clip_actions(mean + noise)
            raw = base.check_returns(objective(samples), samples)
            if cfg.per_step_weighting:
                if raw.ndim != 2:
                    raise ValueError(
                        "MPPIConfig.per_step_weighting=True needs an objective returning "
                        f"per-step rewards [N, H]; it returned shape {raw.shape}"
                    )
                to_go = jnp.flip(jnp.cumsum(jnp.flip(raw, 1), axis=1), 1)  # [N, H]
                w = weights(to_go, hp.inverse_temperature)  # [N, H]: a softmax over N per step
                new_mean = jnp.einsum("nt,nta->ta", w, samples)
                w_total = w[:, 0]
            else:
                w = weights(raw.sum(axis=1) if raw.ndim == 2 else raw, hp.inverse_temperature)
                new_mean = jnp.einsum("n,nta->ta", w, samples)
                w_total = w
            totals = raw.sum(axis=1) if raw.ndim == 2 else raw
            totals = jnp.where(jnp.isnan(totals), -jnp.inf, totals)
            out = {
                "best_return": jnp.max(totals),
                "mean_return": jnp.mean(jnp.where(jnp.isfinite(totals), totals, 0.0)),
                "effective_samples": 1.0 / jnp.sum(jnp.square(w_total)),
            }
            return base.clip_actions(new_mean), out

        mean0 = base.warm_mean(state, cfg.horizon)
        keys = jax.random.split(key, cfg.iterations)
        mean, per_iter = jax.lax.scan(iteration, mean0, keys)
        info = {
            "best_return": jnp.max(per_iter["best_return"]),
            "iteration_best_return": per_iter["best_return"],
            "mean_return": per_iter["mean_return"],
            "effective_samples": per_iter["effective_samples"],
        }
        return mean, state.replace(mean=mean), info

    hparams = MPPIHParams(inverse_temperature=cfg.inverse_temperature, noise_std=cfg.noise_std)
    init = base.make_init(cfg.horizon, cfg.noise_std, hparams)
    return base.Planner(init=init, plan=plan, shift=base.make_state_shift(cfg.noise_std))
