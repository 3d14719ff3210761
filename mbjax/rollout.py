"""Objectives for planners: the bridge between models/environments and planners.

A planner sees only `objective(actions: [N, H, A]) -> returns: [N]`. This module builds such
objectives from the true environment (ground-truth MPC) and, below, from a learned ensemble.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from mbjax.models.ensemble import select_members

Objective = Callable[[jax.Array], jax.Array]


def make_env_objective(env: Any, discount: float = 1.0) -> Callable[[Any], Objective]:
    """Ground-truth objective: the environment itself is the model, vmapped over candidates.

    Returns `objective_for(env_state) -> objective`, where `objective(actions: [N, H, A]) -> [N]`
    is the (discounted) sum of true rewards from `env_state`. Rewards after a termination are
    masked; a time-limit truncation inside the horizon is not a termination and is ignored.
    """

    def objective_for(env_state: Any) -> Objective:
        def one_candidate(actions: jax.Array) -> jax.Array:
            def step(carry, action):
                state, alive, ret, scale = carry
                state = env.step(state, action)
                ret = ret + jnp.where(alive > 0, scale * state.reward, 0.0)
                truncation = state.info.get("truncation", jnp.zeros_like(state.done))
                alive = alive * (1.0 - state.done * (1.0 - truncation))
                return (state, alive, ret, scale * discount), None

            init = (env_state, jnp.ones(()), jnp.zeros(()), jnp.ones(()))
            (_, _, ret, _), _ = jax.lax.scan(step, init, actions)
            return ret

        return jax.vmap(one_candidate)

    return objective_for


# --------------------------------------------------------------------------------------------
# Propagation of particles through a learned ensemble (PETS, Chua et al. 2018).
# --------------------------------------------------------------------------------------------

PROPAGATION_MODES = ("ts1", "tsinf", "expectation", "random_model")
RISK_MEASURES = ("mean", "mean_std", "cvar")

RewardFn = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]
TerminationFn = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]


@dataclasses.dataclass(frozen=True)
class PropagationConfig:
    """How candidates are evaluated under an ensemble.

    mode:
      tsinf        each particle keeps one member for the whole horizon; particle p of every
                   candidate uses member p // (P / E) (P must be a multiple of E).
      ts1          every step, the P particles of each candidate are randomly permuted among the
                   members (P / E per member), so each particle redraws its member (PETS TS1).
      expectation  one particle per candidate propagated through the ensemble's mean prediction
                   (average of the members' means, no sampling); particle axis P = 1.
      random_model each candidate draws one member for the whole horizon and all its P particles
                   use it (a sample from the ensemble posterior per candidate). Draws are balanced:
                   a random permutation assigns ceil(N / E) candidates to each member, so every
                   member evaluates one batched slice. Aleatoric noise still differs per particle.
    num_particles: P. elites_only: use only the model's elite members (E -> K).
    risk: aggregation of the P particle returns: mean, mean_std (mean - risk_k * std) or cvar
      (mean of the worst ceil(cvar_alpha * P) returns). discount: per-step reward discount.
    sample_noise: sample the Gaussian head's aleatoric noise (False: members' means).
    """

    mode: str = "tsinf"
    num_particles: int = 20
    elites_only: bool = False
    risk: str = "mean"
    risk_k: float = 1.0
    cvar_alpha: float = 0.1
    discount: float = 1.0
    sample_noise: bool = True

    def __post_init__(self) -> None:
        def bad(field, value, allowed):
            return ValueError(f"PropagationConfig.{field}={value!r} is invalid; allowed: {allowed}")

        if self.mode not in PROPAGATION_MODES:
            raise bad("mode", self.mode, f"one of {PROPAGATION_MODES}")
        p = self.num_particles
        if isinstance(p, bool) or not isinstance(p, int) or p <= 0:
            raise bad("num_particles", p, "a positive int")
        if self.risk not in RISK_MEASURES:
            raise bad("risk", self.risk, f"one of {RISK_MEASURES}")
        if not (isinstance(self.risk_k, (int, float)) and self.risk_k >= 0):
            raise bad("risk_k", self.risk_k, "a float >= 0")
        if not (isinstance(self.cvar_alpha, (int, float)) and 0.0 < self.cvar_alpha <= 1.0):
            raise bad("cvar_alpha", self.cvar_alpha, "a float in (0, 1]")
        if not (isinstance(self.discount, (int, float)) and 0.0 < self.discount <= 1.0):
            raise bad("discount", self.discount, "a float in (0, 1]")


class PropagationResult(NamedTuple):
    """values: [N] risk-aggregated returns; particle_returns: [N, P];
    trajectories: [N, P, H+1, obs_dim] and members: [N, P, H] (ensemble index used by each
    particle at each step; -1 in expectation mode) only when requested, else None."""

    values: jax.Array
    particle_returns: jax.Array
    trajectories: jax.Array | None
    members: jax.Array | None


def aggregate_returns(
    particle_returns: jax.Array, risk: str = "mean", k: float = 1.0, alpha: float = 0.1
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


def _check_model_setup(model: Any, config: PropagationConfig, reward_fn: Any) -> int:
    """Validates the model/config pairing; returns the number of members used."""
    if not isinstance(config, PropagationConfig):
        raise ValueError(f"config must be a PropagationConfig, got {type(config)}")
    mcfg = model.config
    members = mcfg.elites_count if config.elites_only else mcfg.ensemble_size
    if config.mode in ("ts1", "tsinf") and config.num_particles % members != 0:
        raise ValueError(
            f"PropagationConfig.num_particles={config.num_particles} must be a multiple of the "
            f"{members} members used by mode {config.mode!r} "
            f"({'elites' if config.elites_only else 'ensemble_size'})"
        )
    if reward_fn is None and not mcfg.predict_reward:
        raise ValueError(
            "no reward: pass reward_fn(obs, action, next_obs) or use a model with "
            "EnsembleConfig.predict_reward=True"
        )
    return members


def _batched(fn: Callable, *args: jax.Array) -> jax.Array:
    """Applies a per-transition fn(obs, action, next_obs) over any common leading axes."""
    lead = args[0].shape[:-1]
    flat = [a.reshape((-1,) + a.shape[len(lead) :]) for a in args]
    out = jax.vmap(fn)(*flat)
    return jnp.asarray(out, jnp.float32).reshape(lead)


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
) -> PropagationResult:
    """Evaluates candidates `actions: [N, H, A]` from `obs: [obs_dim]` under the ensemble.

    One program for all candidates x particles x members x horizon (a `lax.scan` over H whose
    body is one stacked-member einsum per layer on [E, N*P/E] rows). Rewards come from
    `reward_fn(obs, action, next_obs)` (per transition) or the model's reward head. Termination
    comes from `termination_fn(obs, action, next_obs) -> done` or, failing that, the model's
    termination head (soft: survival is multiplied by 1 - p(terminate)); rewards after a
    termination are masked, the terminating transition's reward counts. vmap over `obs` (and
    `key`) for a batch of envs.
    """
    members_used = _check_model_setup(model, config, reward_fn)
    obs_dim = model.obs_size
    if obs.shape != (obs_dim,):
        raise ValueError(f"propagate: obs must be [{obs_dim}] (vmap for batches), got {obs.shape}")
    if actions.ndim != 3 or actions.shape[-1] != model.action_size:
        raise ValueError(
            f"propagate: actions must be [N, H, {model.action_size}], got {actions.shape}"
        )
    n, horizon, _ = actions.shape
    mode = config.mode
    em = members_used
    params = model_state.params
    member_ids = jnp.arange(model.config.ensemble_size, dtype=jnp.int32)
    if config.elites_only:
        # One gather of the elite params per call, outside the horizon loop.
        params = select_members(params, model_state.elites)
        member_ids = model_state.elites
    normalizer = model_state.normalizer
    sample = config.sample_noise and model.config.probabilistic
    use_model_term = termination_fn is None and model.config.predict_termination
    disc = config.discount

    def transition(x, a, k):
        """x, a: [em, M, .] per-member rows -> (next [em, M, o], reward [em, M], done [em, M])."""
        step = model.step_members(params, normalizer, x, a, k if sample else None)
        reward = step.reward if reward_fn is None else _batched(reward_fn, x, a, step.next_obs)
        if termination_fn is not None:
            done = _batched(termination_fn, x, a, step.next_obs)
        elif use_model_term:
            done = step.termination_prob
        else:
            done = jnp.zeros(x.shape[:-1], jnp.float32)
        return step.next_obs, reward, done

    def scan_h(body, carry, xs):
        return jax.lax.scan(body, carry, xs)

    k_assign, k_steps = jax.random.split(key)
    step_keys = jax.random.split(k_steps, horizon)
    acts_t = jnp.swapaxes(actions, 0, 1)  # [H, N, A]

    if mode == "expectation":

        def body(carry, xs):
            x, alive, ret, scale = carry
            a, _ = xs
            xb = jnp.broadcast_to(x, (em,) + x.shape)
            ab = jnp.broadcast_to(a, (em,) + a.shape)
            nxt, r, d = transition(xb, ab, None)
            # Mean over members of the mean predictions (no aleatoric sample in this mode).
            nxt, r, d = nxt.mean(0), r.mean(0), d.mean(0)
            ret = ret + alive * scale * r
            return (nxt, alive * (1.0 - d), ret, scale * disc), nxt

        x0 = jnp.broadcast_to(obs, (n, obs_dim))
        init = (x0, jnp.ones((n,)), jnp.zeros((n,)), jnp.ones(()))
        (_, _, ret, _), traj = scan_h(body, init, (acts_t, step_keys))
        particle_returns = ret[:, None]  # [N, 1]
        traj_np = jnp.swapaxes(traj, 0, 1)[:, None]  # [N, 1, H, o]
        members = jnp.full((n, 1, horizon), -1, jnp.int32)

    elif mode == "tsinf":
        p = config.num_particles
        g = p // em

        # Slot layout [em, N, G]: particle p = e * G + g of each candidate rides member e.
        def body(carry, xs):
            x, alive, ret, scale = carry  # x: [em, N, G, o]
            a, k = xs  # a: [N, A]
            ab = jnp.broadcast_to(a[None, :, None], (em, n, g, a.shape[-1]))
            nxt, r, d = transition(x.reshape(em, n * g, obs_dim), ab.reshape(em, n * g, -1), k)
            nxt, r, d = nxt.reshape(x.shape), r.reshape(alive.shape), d.reshape(alive.shape)
            ret = ret + alive * scale * r
            return (nxt, alive * (1.0 - d), ret, scale * disc), nxt

        x0 = jnp.broadcast_to(obs, (em, n, g, obs_dim))
        init = (x0, jnp.ones((em, n, g)), jnp.zeros((em, n, g)), jnp.ones(()))
        (_, _, ret, _), traj = scan_h(body, init, (acts_t, step_keys))
        particle_returns = jnp.transpose(ret, (1, 0, 2)).reshape(n, p)
        # traj: [H, em, N, G, o] -> [N, P, H, o]
        traj_np = jnp.transpose(traj, (2, 1, 3, 0, 4)).reshape(n, p, horizon, obs_dim)
        slot_member = jnp.repeat(member_ids, g)  # [P]
        members = jnp.broadcast_to(slot_member[None, :, None], (n, p, horizon))

    elif mode == "ts1":
        p = config.num_particles
        g = p // em
        # All H per-candidate permutations in one batched sort, outside the horizon loop.
        perms = jnp.argsort(jax.random.uniform(k_assign, (horizon, n, p)), axis=-1)

        # Canonical particle order [N, P]; each step a per-candidate permutation puts particle
        # perm[n, j] into slot j, and slot j rides member j // G.
        def body(carry, xs):
            x, alive, ret, scale = carry  # x: [N, P, o]
            a, k, perm = xs  # perm: [N, P]
            # Inverse permutation by a scatter (cheaper to compile and run than a second sort).
            inv = (
                jnp.zeros_like(perm)
                .at[jnp.arange(n)[:, None], perm]
                .set(jnp.broadcast_to(jnp.arange(p, dtype=perm.dtype), (n, p)))
            )
            xs_slot = jnp.take_along_axis(x, perm[..., None], axis=1)  # [N, P, o]
            xm = jnp.transpose(xs_slot.reshape(n, em, g, obs_dim), (1, 0, 2, 3))
            ab = jnp.broadcast_to(a[None, :, None], (em, n, g, a.shape[-1]))
            nxt, r, d = transition(xm.reshape(em, n * g, obs_dim), ab.reshape(em, n * g, -1), k)

            def back(v):  # [em, N*G, ...] slot layout -> canonical [N, P, ...]
                v = jnp.swapaxes(v.reshape((em, n, g) + v.shape[2:]), 0, 1)
                v = v.reshape((n, p) + v.shape[3:])
                idx = inv.reshape(inv.shape + (1,) * (v.ndim - 2))
                return jnp.take_along_axis(v, idx, axis=1)

            nxt, r, d = back(nxt), back(r), back(d)
            ret = ret + alive * scale * r
            member = member_ids[inv // g]  # [N, P]: member used by each particle this step
            return (nxt, alive * (1.0 - d), ret, scale * disc), (nxt, member)

        x0 = jnp.broadcast_to(obs, (n, p, obs_dim))
        init = (x0, jnp.ones((n, p)), jnp.zeros((n, p)), jnp.ones(()))
        (_, _, ret, _), (traj, mem) = scan_h(body, init, (acts_t, step_keys, perms))
        particle_returns = ret
        traj_np = jnp.transpose(traj, (1, 2, 0, 3))  # [N, P, H, o]
        members = jnp.transpose(mem, (1, 2, 0))

    else:  # random_model
        p = config.num_particles
        c = -(-n // em)  # candidates per member (padded)
        n_pad = c * em
        # Balanced random assignment: slot s = e * c + j holds candidate order[s].
        order = jax.random.permutation(k_assign, n_pad)
        inv = jnp.argsort(order)
        acts_pad = jnp.concatenate(
            [actions, jnp.zeros((n_pad - n,) + actions.shape[1:], actions.dtype)], axis=0
        )
        acts_slot = jnp.transpose(acts_pad[order].reshape(em, c, horizon, -1), (2, 0, 1, 3))

        def body(carry, xs):
            x, alive, ret, scale = carry  # x: [em, c, P, o]
            a, k = xs  # a: [em, c, A]
            ab = jnp.broadcast_to(a[:, :, None], (em, c, p, a.shape[-1]))
            nxt, r, d = transition(x.reshape(em, c * p, obs_dim), ab.reshape(em, c * p, -1), k)
            nxt, r, d = nxt.reshape(x.shape), r.reshape(alive.shape), d.reshape(alive.shape)
            ret = ret + alive * scale * r
            return (nxt, alive * (1.0 - d), ret, scale * disc), nxt

        x0 = jnp.broadcast_to(obs, (em, c, p, obs_dim))
        init = (x0, jnp.ones((em, c, p)), jnp.zeros((em, c, p)), jnp.ones(()))
        (_, _, ret, _), traj = scan_h(body, init, (acts_slot, step_keys))
        particle_returns = ret.reshape(n_pad, p)[inv][:n]
        traj_np = traj.reshape(horizon, n_pad, p, obs_dim)[:, inv][:, :n]
        traj_np = jnp.transpose(traj_np, (1, 2, 0, 3))
        cand_member = member_ids[inv[:n] // c]  # [N]
        members = jnp.broadcast_to(cand_member[:, None, None], (n, p, horizon))

    values = aggregate_returns(particle_returns, config.risk, config.risk_k, config.cvar_alpha)
    if not return_trajectories:
        return PropagationResult(values, particle_returns, None, None)
    pn = particle_returns.shape[1]
    first = jnp.broadcast_to(obs, (n, pn, 1, obs_dim))
    trajectories = jnp.concatenate([first, traj_np], axis=2)
    return PropagationResult(values, particle_returns, trajectories, members)


def make_model_objective(
    model: Any,
    config: PropagationConfig,
    reward_fn: RewardFn | None = None,
    termination_fn: TerminationFn | None = None,
) -> Callable[[Any, jax.Array, jax.Array], Objective]:
    """Objective factory over a learned ensemble (`model` from `mbjax.models.make_ensemble`).

    Returns `objective_for(model_state, obs: [obs_dim], key) -> objective` with
    `objective(actions: [N, H, A]) -> values: [N]` (see `propagate`). The key is fixed for the
    objective's lifetime, so every planner iteration within one plan call sees the same noise
    (common random numbers: candidates are compared under the same sampled futures).
    Configuration errors (particles vs members, missing reward) raise here, before tracing.
    """
    _check_model_setup(model, config, reward_fn)

    def objective_for(model_state: Any, obs: jax.Array, key: jax.Array) -> Objective:
        def objective(actions: jax.Array) -> jax.Array:
            return propagate(
                model, config, model_state, obs, actions, key, reward_fn, termination_fn
            ).values

        return objective

    return objective_for
