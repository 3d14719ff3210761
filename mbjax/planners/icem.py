"""iCEM (Pinneri et al. 2020): CEM with colored noise, a decaying population and kept elites.

Hyperparameters as leaves: `alpha` and `noise_beta` are float32 leaves of the state
(`state.hparams`, an `ICEMHParams`); a grid over them is a vmap without recompiling:

    state = planner.init(action_size, key)
    grid = jax.vmap(
        lambda b: planner.plan(base.with_hparams(state, noise_beta=b), problem, obs, key)
    )
    actions, states, info = grid(jnp.array([0.5, 2.0, 3.0]))          # actions: [3, H, A]

(`init` draws the first kept elites with the config's `noise_beta`.) The population schedule,
iterations, elite counts, std bounds and `iteration_mode` stay static config.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

from mbjax import validation
from mbjax.planners import base
from mbjax.planners.noise import colored_noise


@struct.dataclass
class ICEMHParams:
    """iCEM's numeric hyperparameters in the state, float32 []: alpha, noise_beta (see
    `ICEMConfig`)."""

    alpha: jax.Array
    noise_beta: jax.Array


@struct.dataclass
class ICEMState:
    """iCEM warm start: mean/std [H, A], the elites kept for the next plan [K_keep, H, A] and the
    hyperparameters (`ICEMHParams`)."""

    mean: jax.Array
    std: jax.Array
    elites: jax.Array
    hparams: ICEMHParams


class ICEMCarry(NamedTuple):
    """Carried from one iCEM iteration to the next.

    mean, std: [H, A] sampling distribution. kept: [K_keep, H, A] elites re-evaluated next
    iteration. best_actions: [H, A], best_return: [] best candidate seen so far.
    """

    mean: jax.Array
    std: jax.Array
    kept: jax.Array
    best_actions: jax.Array
    best_return: jax.Array


@dataclasses.dataclass(frozen=True)
class ICEMConfig:
    """iCEM; defaults from Pinneri et al. 2020 ("Sample-efficient cross-entropy method for
    real-time planning", CoRL 2020).

    horizon: H = 30. population: 40 samples in the first iteration, divided by
    population_decay (1.25) every iteration, but never below min(2 * num_elites, population).
    iterations: 3. num_elites: K = 10. keep_elites_fraction: 0.3 of the elites are carried into
      the next iteration and (shifted) into the next plan.
    noise_beta: colored-noise exponent (3.0; 0.25 for half-cheetah in the paper; 0 = white).
    alpha: momentum on mean and std (0.1). noise_beta and alpha are the defaults of
      `state.hparams`. init_std: 0.5. min_std, max_std: std bounds.
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
        base.validate_elite_sampler(self)
        validation.field_float(self, "population_decay", 1.0, hi_open=True)
        validation.field_float(self, "keep_elites_fraction", 0.0, 1.0)
        validation.field_float(self, "noise_beta", 0.0, 10.0)
        validation.field_bool(self, "add_mean")
        validation.field_bool(self, "return_best")
        validation.field_choice(self, "iteration_mode", ("unroll", "scan"))

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


def icem_iteration(
    cfg: ICEMConfig,
    hp: ICEMHParams,
    objective: base.Objective,
    carry: ICEMCarry,
    key: jax.Array,
    n_valid: Any,
    mean_slot: bool,
    mean_valid: Any,
) -> tuple[ICEMCarry, tuple[jax.Array, jax.Array]]:
    """One iCEM update; returns the new carry and (mean elite return [], best return []).

    n_valid: this iteration's population (static in "unroll" mode, traced in "scan" mode).
    mean_slot: whether the mean is a candidate (static); mean_valid: whether it counts ("scan").
    Always draws populations[0] noise sequences and evaluates the first `n_sample` of them, so
    "unroll" and "scan" see the same random numbers.
    """
    k, k_keep = cfg.num_elites, cfg.num_kept
    mean, std = carry.mean, carry.std
    n_max = cfg.populations[0]
    n_sample = n_max if cfg.iteration_mode == "scan" else n_valid
    noise = colored_noise(key, hp.noise_beta, (n_max,) + mean.shape)[:n_sample]
    parts = [base.clip_actions(mean + std * noise), carry.kept]
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
    mean = hp.alpha * mean + (1.0 - hp.alpha) * elites.mean(axis=0)
    std = hp.alpha * std + (1.0 - hp.alpha) * elites.std(axis=0)
    std = jnp.clip(std, cfg.min_std, cfg.max_std)
    best_a, best_r = base.update_best(carry.best_actions, carry.best_return, elites[0], elite_r[0])
    carry = ICEMCarry(mean, std, elites[:k_keep], best_a, best_r)
    return carry, (elite_r.mean(), elite_r[0])


def icem_iterations(
    cfg: ICEMConfig, hp: ICEMHParams, objective: base.Objective, carry: ICEMCarry, key: jax.Array
) -> tuple[ICEMCarry, jax.Array, jax.Array]:
    """All `cfg.iterations` updates in `cfg.iteration_mode`: (final carry, mean elite return
    [I], best return per iteration [I])."""
    keys = jax.random.split(key, cfg.iterations)
    last = cfg.iterations - 1
    if cfg.iteration_mode == "scan":
        xs = (keys, jnp.asarray(cfg.populations), jnp.arange(cfg.iterations) == last)
        carry, (elite_return, iteration_best) = jax.lax.scan(
            lambda c, x: icem_iteration(cfg, hp, objective, c, x[0], x[1], cfg.add_mean, x[2]),
            carry,
            xs,
        )
        return carry, elite_return, iteration_best
    # A Python loop over iterations, at trace time, ONLY because the population shrinks: every
    # iteration has its own static shape, so each evaluates exactly its own population (the
    # paper's sample count). The cost: the objective is traced and compiled once per iteration
    # (3-5 copies). iteration_mode="scan" compiles it once.
    stats = []
    for i, n_i in enumerate(cfg.populations):
        mean_slot = cfg.add_mean and i == last
        carry, out = icem_iteration(cfg, hp, objective, carry, keys[i], n_i, mean_slot, True)
        stats.append(out)
    return carry, jnp.stack([s[0] for s in stats]), jnp.stack([s[1] for s in stats])


def make_icem(config: ICEMConfig) -> base.Planner:
    """iCEM planner; state is an `ICEMState`."""
    cfg = config
    default_hparams = ICEMHParams(alpha=cfg.alpha, noise_beta=cfg.noise_beta)

    @functools.partial(jax.jit, static_argnums=0)  # one compiled call instead of ~20 eager ops
    def initial_elites(action_size: int, key: jax.Array, beta: jax.Array) -> jax.Array:
        noise = colored_noise(key, beta, (cfg.num_kept, cfg.horizon, action_size))
        return base.clip_actions(cfg.init_std * noise)

    def init(action_size: int, key: jax.Array, hparams: Any = None) -> ICEMState:
        s = base.init_state(cfg.horizon, action_size, cfg.init_std,
                            default_hparams if hparams is None else hparams)
        # Kept elites for the first plan: draws from the initial distribution (no past plan).
        elites = initial_elites(action_size, key, s.hparams.noise_beta)
        return ICEMState(mean=s.mean, std=s.std, elites=elites, hparams=s.hparams)

    shift_mean_std = base.make_state_shift(cfg.init_std)

    def shift(state: ICEMState, steps: Any) -> ICEMState:
        state = shift_mean_std(state, steps)
        return state.replace(elites=base.shift_sequence(state.elites, steps, 0.0))

    def plan(
        state: ICEMState, problem: base.Problem, obs: Any, key: jax.Array
    ) -> tuple[jax.Array, ICEMState, dict]:
        """Returns (actions [H, A], state with mean = final mean and the kept elites, info)."""
        del obs
        mean = base.warm_mean(state, cfg.horizon)
        std = jnp.clip(state.std, cfg.min_std, cfg.max_std)
        carry = ICEMCarry(mean, std, state.elites, mean, jnp.asarray(-jnp.inf, mean.dtype))
        carry, elite_return, iteration_best = icem_iterations(
            cfg, state.hparams, base.objective_of(problem), carry, key
        )
        actions = carry.best_actions if cfg.return_best else carry.mean
        new_state = state.replace(
            mean=carry.mean, std=jnp.full_like(carry.std, cfg.init_std), elites=carry.kept
        )
        info = {
            "best_return": carry.best_return,
            "elite_return": elite_return,
            "iteration_best_return": iteration_best,
        }
        return actions, new_state, info

    return base.Planner(init=init, plan=plan, shift=shift)
