"""Propagation of particles through a learned model (PETS, Chua et al. 2018).

`propagate` evaluates candidate action sequences [N, H, A] from one state under any model
implementing the dynamics-model protocol (`mbjax.models.base`): one `lax.scan` over the horizon
whose body is one batched model call; the mode (`modes.MODES`) decides how particles ride
members, `transition` gives the one reward contract and termination rule.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from mbjax import validation
from mbjax.rollout import modes
from mbjax.rollout.transition import (
    TERMINATION_RULES,
    Returns,
    RewardFn,
    TerminationFn,
    accumulate,
    check_reward_source,
    init_returns,
    make_model_transition,
)

PROPAGATION_MODES = tuple(modes.MODES)
RISK_MEASURES = ("mean", "mean_std", "cvar")


@dataclasses.dataclass(frozen=True)
class PropagationConfig:
    """How candidates are evaluated under a model with M members.

    mode:
      tsinf        each particle keeps one member for the whole horizon; particle p of every
                   candidate uses member p // (P / M) (P must be a multiple of M).
      ts1          every step, the P particles of each candidate are randomly permuted among the
                   members (P / M per member), so each particle redraws its member (PETS TS1).
      expectation  one particle per candidate propagated through the members' mean prediction
                   (average of the members' means, no sampling); particle axis P = 1.
      random_model each candidate draws one member for the whole horizon and all its P particles
                   use it (a sample from the ensemble posterior per candidate). Draws are balanced:
                   a random permutation assigns ceil(N / M) candidates to each member, so every
                   member evaluates one batched slice. Aleatoric noise still differs per particle.
      moment_matching  tsinf's member assignment, and before every model call the P particles of
                   a candidate are refitted to a Gaussian (mean, covariance) and resampled from
                   it (the PETS paper's MM).
    num_particles: P. elites_only: use only the model's elite members (M -> K).
    risk: aggregation of the P particle returns: mean, mean_std (mean - risk_k * std) or cvar
      (mean of the worst ceil(cvar_alpha * P) returns). discount: per-step reward discount.
    sample_noise: sample the model's aleatoric noise (False: the members' means).
    termination: how a learned termination head is applied: "soft" (survival shrinks by 1 - p,
      PETS) or "hard" (stop where p > 0.5). Known termination functions are 0/1 either way.
    """

    mode: str = "tsinf"
    num_particles: int = 20
    elites_only: bool = False
    risk: str = "mean"
    risk_k: float = 1.0
    cvar_alpha: float = 0.1
    discount: float = 1.0
    sample_noise: bool = True
    termination: str = "soft"

    def __post_init__(self) -> None:
        validation.field_choice(self, "mode", PROPAGATION_MODES)
        validation.field_int(self, "num_particles")
        validation.field_bool(self, "elites_only")
        validation.field_choice(self, "risk", RISK_MEASURES)
        validation.field_float(self, "risk_k", 0.0)
        validation.field_float(self, "cvar_alpha", 0.0, 1.0, lo_open=True)
        validation.field_float(self, "discount", 0.0, 1.0, lo_open=True)
        validation.field_bool(self, "sample_noise")
        validation.field_choice(self, "termination", TERMINATION_RULES)


class PropagationResult(NamedTuple):
    """values: [N] risk-aggregated returns; particle_returns: [N, P];
    trajectories: [N, P, H+1, S] and members: [N, P, H] (model member used by each particle at
    each step; -1 in expectation mode) only when requested, else None."""

    values: jax.Array
    particle_returns: jax.Array
    trajectories: jax.Array | None
    members: jax.Array | None


class _Carry(NamedTuple):
    x: jax.Array
    returns: Returns


def aggregate_returns(
    particle_returns: jax.Array, risk: str = "mean", k: Any = 1.0, alpha: float = 0.1
) -> jax.Array:
    """[N, P] particle returns -> [N] values (higher is better); see PropagationConfig.risk."""
    if risk == "mean":
        return jnp.mean(particle_returns, axis=-1)
    if risk == "mean_std":
        return jnp.mean(particle_returns, axis=-1) - k * jnp.std(particle_returns, axis=-1)
    if risk == "cvar":
        m = max(1, math.ceil(alpha * particle_returns.shape[-1] - 1e-9))
        return jnp.mean(jnp.sort(particle_returns, axis=-1)[..., :m], axis=-1)
    raise ValueError(f"unknown risk {risk!r}; allowed: {RISK_MEASURES}")


def check_setup(model: Any, config: PropagationConfig, reward_fn: RewardFn | None) -> int:
    """Validates the model/config pairing before tracing; returns the number of members used."""
    if not isinstance(config, PropagationConfig):
        raise ValueError(f"config must be a PropagationConfig, got {type(config)}")
    check_reward_source(model, reward_fn, "propagation")
    members = model.num_elites if config.elites_only else model.num_members
    if config.mode in modes.GROUPED_MODES and config.num_particles % members != 0:
        raise ValueError(
            f"PropagationConfig.num_particles={config.num_particles} must be a multiple of the "
            f"{members} members used by mode {config.mode!r} "
            f"({'elites' if config.elites_only else 'num_members'})"
        )
    return members


def _step_noise(model: Any, layout: modes.Layout, step_keys: jax.Array) -> jax.Array:
    """What each step's model call gets for its aleatoric noise, stacked over H: the step keys
    [H, 2], or, for a model declaring `noise_size` D > 0 (the ensemble), the standard normals
    themselves, [H, M, R, D], drawn in one call before the horizon loop (bit-identical to the
    model drawing them from the same keys).

    One draw per horizon instead of H small ones; and since an objective's key is fixed for a
    plan (common random numbers), XLA hoists this draw out of the planner's iteration loop too,
    so the noise is drawn once per plan, not once per planner iteration.
    """
    size = getattr(model, "noise_size", None)
    if not size:
        return step_keys  # a model without pre-drawn noise (or a deterministic one)
    aux0 = jax.tree_util.tree_map(lambda v: v[0], layout.aux)
    xm, _ = jax.eval_shape(layout.to_members, layout.x0, layout.actions[0], aux0)
    shape, dtype = xm.shape[:-1] + (size,), layout.x0.dtype
    return jax.vmap(lambda k: jax.random.normal(k, shape, dtype))(step_keys)


def propagate(
    model: Any,
    config: PropagationConfig,
    model_state: Any,
    obs: jax.Array,
    actions: jax.Array,
    key: jax.Array,
    reward_fn: RewardFn | None = None,
    termination_fn: TerminationFn | None = None,
    return_trajectories: bool = False,
    terminal_value: Callable[[jax.Array], jax.Array] | None = None,
) -> PropagationResult:
    """Evaluates candidates `actions: [N, H, A]` from `obs: [S]` under the model.

    One program for all candidates x particles x members x horizon. Rewards come from
    `reward_fn(obs, action, next_obs)` (per transition) or the model's reward head; termination
    from `termination_fn` or the model's head (see `transition`). vmap over `obs` (and `key`)
    for a batch of envs. terminal_value(x [..., S]) -> [...]: a value of the final states added
    to every particle's return as discount^H * survival * V(x_H) (MPC with a learned terminal
    value, TD-MPC / LOOP); None: the H-step return alone.
    """
    m = check_setup(model, config, reward_fn)
    if obs.shape != (model.state_size,):
        raise ValueError(
            f"propagate: obs must be [{model.state_size}] (vmap for batches), got {obs.shape}"
        )
    if actions.ndim != 3 or actions.shape[-1] != model.action_size:
        raise ValueError(
            f"propagate: actions must be [N, H, {model.action_size}], got {actions.shape}"
        )
    horizon = actions.shape[1]
    members = model.elites(model_state) if config.elites_only else None
    transition = make_model_transition(model, reward_fn, termination_fn, config.termination)
    k_assign, k_steps = jax.random.split(key)
    layout = modes.MODES[config.mode](obs, actions, m, config.num_particles, k_assign)
    sample = config.sample_noise and layout.samples_noise
    step_noise = _step_noise(model, layout, jax.random.split(k_steps, horizon)) if sample else None

    def body(carry: _Carry, xs) -> tuple[_Carry, jax.Array]:
        a, noise, aux = xs
        if layout.reorder is not None:
            carry = layout.reorder(carry, aux)
        xm, am = layout.to_members(carry.x, a, aux)
        out = transition(model_state, xm, am, noise, members)
        out = layout.from_members(out, aux)
        returns = accumulate(carry.returns, out.reward, out.done, config.discount)
        return _Carry(out.next_obs, returns), out.next_obs

    init = _Carry(layout.x0, init_returns(layout.x0.shape[:-1]))
    final, traj = jax.lax.scan(body, init, (layout.actions, step_noise, layout.aux))
    totals = final.returns.total
    if terminal_value is not None:
        tail = final.returns.alive * final.returns.scale * terminal_value(final.x)
        totals = totals + jnp.where(final.returns.alive > 0, tail, 0.0)
    particle_returns = layout.particle_returns(totals)
    values = aggregate_returns(particle_returns, config.risk, config.risk_k, config.cvar_alpha)
    if not return_trajectories:
        return PropagationResult(values, particle_returns, None, None)
    traj = layout.trajectories(traj)  # [N, P, H, S]
    first = jnp.broadcast_to(obs, traj.shape[:2] + (1, obs.shape[-1]))
    ids = jnp.arange(model.num_members, dtype=jnp.int32) if members is None else members
    return PropagationResult(
        values, particle_returns, jnp.concatenate([first, traj], axis=2), layout.members(ids)
    )
