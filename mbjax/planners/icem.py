"""iCEM (Pinneri et al. 2020): CEM with colored noise, a decaying population and kept elites."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from mbjax.planners import base
from mbjax.planners.noise import colored_noise


@struct.dataclass
class ICEMState:
    """iCEM warm start: mean/std [H, A] and the elites kept for the next plan [K_keep, H, A]."""

    mean: jax.Array
    std: jax.Array
    elites: jax.Array


@dataclasses.dataclass(frozen=True)
class ICEMConfig:
    """iCEM; defaults from Pinneri et al. 2020 (see REFERENCES.md).

    horizon: H = 30. population: 40 samples in the first iteration, divided by
    population_decay (1.25) every iteration, but never below min(2 * num_elites, population).
    iterations: 3. num_elites: K = 10. keep_elites_fraction: 0.3 of the elites are carried into
      the next iteration and (shifted) into the next plan.
    noise_beta: colored-noise exponent (3.0; 0.25 for half-cheetah in the paper; 0 = white).
    alpha: momentum on mean and std (0.1). init_std: 0.5. min_std, max_std: std bounds.
    add_mean: add the mean as a candidate in the last iteration.
    return_best: return the best elite seen (iCEM); False returns the final mean.
    iteration_mode: how the shrinking population is compiled. "unroll" (default): a trace-time
      loop over the (few) iterations, each evaluating exactly its own population; the objective
      is compiled once per iteration. "scan": a `lax.scan` that evaluates populations[0] samples
      every iteration and masks the surplus; the objective is compiled once, but the masked
      candidates are evaluated anyway (132 instead of 107 per plan with the defaults). Both
      modes give the same plan for the same key. Prefer "scan" when compile time dominates
      (short runs, heavy objectives), "unroll" for long runs.
    Samples are clipped to [-1, 1] (iCEM clips rather than truncates).
    """

    horizon: int = 30
    population: int = 40
    population_decay: float = 1.25
    iterations: int = 3
    num_elites: int = 10
    keep_elites_fraction: float = 0.3
    noise_beta: float = 3.0
    alpha: float = 0.1
    init_std: float = 0.5
    min_std: float = 1e-3
    max_std: float = 2.0
    add_mean: bool = True
    return_best: bool = True
    iteration_mode: str = "unroll"

    def __post_init__(self) -> None:
        for name in ("horizon", "population", "iterations", "num_elites"):
            base.check_positive_int(self, name)
        if self.num_elites > self.population:
            raise ValueError(
                f"ICEMConfig.num_elites={self.num_elites} is invalid: allowed is 1 <= num_elites "
                f"<= population={self.population}"
            )
        base.check_range(self, "population_decay", 1.0, float("inf"), high_open=True)
        base.check_range(self, "keep_elites_fraction", 0.0, 1.0)
        base.check_range(self, "noise_beta", 0.0, 10.0)
        base.check_range(self, "alpha", 0.0, 1.0, high_open=True)
        base.check_std_bounds(self)
        base.check_bool(self, "add_mean")
        base.check_bool(self, "return_best")
        base.check_choice(self, "iteration_mode", ("unroll", "scan"))

    @property
    def populations(self) -> tuple[int, ...]:
        """Static number of fresh samples per iteration, e.g. (40, 32, 25) for the defaults."""
        floor = min(2 * self.num_elites, self.population)
        return tuple(
            max(floor, int(self.population / self.population_decay**i))
            for i in range(self.iterations)
        )

    @property
    def num_kept(self) -> int:
        return int(self.keep_elites_fraction * self.num_elites)

    @property
    def trajectories_per_plan(self) -> int:
        """Evaluated sequences per plan: fresh samples + re-evaluated kept elites + the mean."""
        if self.iteration_mode == "scan":
            per_iteration = self.populations[0] + self.num_kept + int(self.add_mean)
            return per_iteration * self.iterations
        return sum(self.populations) + self.num_kept * self.iterations + int(self.add_mean)


def make_icem(config: ICEMConfig) -> base.Planner:
    """iCEM planner; state is an `ICEMState`."""
    cfg = config
    k, k_keep = cfg.num_elites, cfg.num_kept

    @functools.partial(jax.jit, static_argnums=0)  # one compiled call instead of ~20 eager ops
    def initial_elites(action_size: int, key: jax.Array) -> jax.Array:
        noise = colored_noise(key, cfg.noise_beta, (k_keep, cfg.horizon, action_size))
        return base.clip_actions(cfg.init_std * noise)

    def init(action_size: int, key: jax.Array) -> ICEMState:
        s = base.init_state(cfg.horizon, action_size, cfg.init_std)
        # Kept elites for the first plan: draws from the initial distribution (no past plan).
        return ICEMState(mean=s.mean, std=s.std, elites=initial_elites(action_size, key))

    def shift(state: ICEMState, steps: Any) -> ICEMState:
        return state.replace(
            mean=base.shift_sequence(state.mean, steps, 0.0),
            std=base.shift_sequence(state.std, steps, cfg.init_std),
            elites=base.shift_sequence(state.elites, steps, 0.0),
        )

    def iteration(objective, carry, key, n_valid, mean_slot, mean_valid):
        """One iCEM update. Always draws populations[0] noise sequences and evaluates the first
        `n_sample` of them, so "unroll" and "scan" see the same random numbers."""
        mean, std, kept, best_a, best_r = carry
        n_max = cfg.populations[0]
        n_sample = n_max if cfg.iteration_mode == "scan" else n_valid
        noise = colored_noise(key, cfg.noise_beta, (n_max,) + mean.shape)[:n_sample]
        parts = [base.clip_actions(mean + std * noise), kept]
        if mean_slot:
            parts.append(mean[None])
        candidates = jnp.concatenate(parts, axis=0)
        returns = base.evaluate(objective, candidates)
        if cfg.iteration_mode == "scan":  # mask the samples beyond this iteration's population
            valid = [jnp.arange(n_sample) < n_valid, jnp.ones((k_keep,), bool)]
            if mean_slot:
                valid.append(jnp.reshape(mean_valid, (1,)))
            returns = jnp.where(jnp.concatenate(valid), returns, -jnp.inf)
        elite_r, idx = jax.lax.top_k(returns, k)
        elites = candidates[idx]
        mean = cfg.alpha * mean + (1.0 - cfg.alpha) * elites.mean(axis=0)
        std = cfg.alpha * std + (1.0 - cfg.alpha) * elites.std(axis=0)
        std = jnp.clip(std, cfg.min_std, cfg.max_std)
        better = elite_r[0] > best_r
        best_a = jnp.where(better, elites[0], best_a)
        best_r = jnp.where(better, elite_r[0], best_r)
        carry = (mean, std, elites[:k_keep], best_a, best_r)
        return carry, (elite_r.mean(), elite_r[0])

    def plan(
        state: ICEMState, objective: base.Objective, obs: Any, key: jax.Array
    ) -> tuple[jax.Array, ICEMState, dict]:
        """Returns (actions [H, A], state with mean = final mean and the kept elites, info)."""
        del obs
        base.check_state(state, cfg.horizon)
        mean = base.clip_actions(state.mean)
        std = jnp.clip(state.std, cfg.min_std, cfg.max_std)
        carry = (mean, std, state.elites, mean, jnp.asarray(-jnp.inf, mean.dtype))
        keys = jax.random.split(key, cfg.iterations)
        last = cfg.iterations - 1
        if cfg.iteration_mode == "unroll":
            # A Python loop over iterations, at trace time, ONLY because the population shrinks:
            # every iteration has its own static shape, so each evaluates exactly its own
            # population (the paper's sample count). The cost: the objective is traced and
            # compiled once per iteration (3-5 copies). iteration_mode="scan" compiles it once.
            stats = []
            for i, n_i in enumerate(cfg.populations):
                carry, out = iteration(
                    objective, carry, keys[i], n_i, cfg.add_mean and i == last, True
                )
                stats.append(out)
            elite_return = jnp.stack([s[0] for s in stats])
            iteration_best = jnp.stack([s[1] for s in stats])
        else:
            xs = (keys, jnp.asarray(cfg.populations), jnp.arange(cfg.iterations) == last)
            carry, (elite_return, iteration_best) = jax.lax.scan(
                lambda c, x: iteration(objective, c, x[0], x[1], cfg.add_mean, x[2]), carry, xs
            )
        mean, std, kept, best_a, best_r = carry
        actions = best_a if cfg.return_best else mean
        new_state = ICEMState(mean=mean, std=jnp.full_like(std, cfg.init_std), elites=kept)
        info = {
            "best_return": best_r,
            "elite_return": elite_return,
            "iteration_best_return": iteration_best,
        }
        return actions, new_state, info

    return base.Planner(init=init, plan=plan, shift=shift)
