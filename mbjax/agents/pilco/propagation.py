"""PILCO's long-term prediction: the state distribution N(mean, cov) pushed through policy,
squashing and GP by moment matching, one `lax.scan` over the horizon, and the expected cost
(Deisenroth & Rasmussen 2011, sec. 2-3; the toolbox's propagated.m / value.m).

A task is described by `TaskSpec`: which observation entries are plain state variables and
which (sin, cos) pairs encode angles. PILCO's state z [D] = [plain (Dp), angles (Da)] keeps the
angles themselves (a Gaussian over an angle, not over its sin/cos); the features the policy, the
GP and the cost see are [plain, sin(angles), cos(angles)] [F], with analytic trig moments.
One step from z ~ N(m, S) (all on one joint Gaussian, so every correlation is kept):
  [z, sin, cos] -> policy u~ -> u = saturate(u~) -> GP delta from [features, u]
  z' = z + delta:  m' = m + mu_d,  S' = S + S_d + C + C^T,  C = Cov[z, delta]
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from mbjax.agents.pilco import moments as mm
from mbjax.agents.pilco import policy as pol
from mbjax.models.gp import Posterior, moment_match


class TaskSpec(NamedTuple):
    """plain: obs indices of plain state variables; angles: (sin index, cos index) obs pairs;
    init_mean / init_std: the start-state distribution of z (D = Dp + Da), independent dims;
    cost_map [k, F] / cost_target [k]: the saturating cost acts on cost_map @ features."""

    plain: tuple[int, ...]
    angles: tuple[tuple[int, int], ...]
    init_mean: tuple[float, ...]
    init_std: tuple[float, ...]
    cost_map: tuple[tuple[float, ...], ...]
    cost_target: tuple[float, ...]

    @property
    def state_size(self) -> int:
        return len(self.plain) + len(self.angles)

    @property
    def feature_size(self) -> int:
        return len(self.plain) + 2 * len(self.angles)


def obs_state(spec: TaskSpec, obs: jax.Array) -> jax.Array:
    """z [D] from an observation: plain entries, then atan2(sin, cos) per angle."""
    angles = [jnp.arctan2(obs[s], obs[c]) for s, c in spec.angles]
    return jnp.concatenate([obs[jnp.asarray(spec.plain)], jnp.stack(angles)])


def obs_features(spec: TaskSpec, obs: jax.Array) -> jax.Array:
    """Features [F] = [plain, sin, cos] read from an observation."""
    sins = jnp.asarray([s for s, _ in spec.angles])
    coss = jnp.asarray([c for _, c in spec.angles])
    return jnp.concatenate([obs[jnp.asarray(spec.plain)], obs[sins], obs[coss]])


def state_delta(spec: TaskSpec, obs: jax.Array, next_obs: jax.Array) -> jax.Array:
    """The GP's target z' - z [D], angle differences wrapped into (-pi, pi]."""
    d = obs_state(spec, next_obs) - obs_state(spec, obs)
    dp = len(spec.plain)
    wrapped = jnp.arctan2(jnp.sin(d[dp:]), jnp.cos(d[dp:]))
    return jnp.concatenate([d[:dp], wrapped])


def joint_features(spec: TaskSpec, m: jax.Array, s: jax.Array):
    """Joint Gaussian over [z, sin, cos] and the indices of the features [F] in it."""
    dp, d = len(spec.plain), spec.state_size
    jm, js = mm.append_trig(m, s, tuple(range(dp, d)))
    idx = jnp.concatenate([jnp.arange(dp), jnp.arange(d, d + 2 * len(spec.angles))])
    return jm, js, idx


def expected_cost(spec: TaskSpec, m: jax.Array, s: jax.Array, width: jax.Array) -> jax.Array:
    """E[saturating cost] at z ~ N(m, s)."""
    jm, js, idx = joint_features(spec, m, s)
    c = jnp.asarray(spec.cost_map, m.dtype)
    fm, fs = jm[idx], js[idx][:, idx]
    return mm.expected_saturating_cost(c @ fm, c @ fs @ c.T, jnp.asarray(spec.cost_target), width)


def point_cost(spec: TaskSpec, obs: jax.Array, width: jax.Array) -> jax.Array:
    """The saturating cost of an observation (for logging)."""
    y = jnp.asarray(spec.cost_map) @ obs_features(spec, obs)
    return mm.saturating_cost(y, jnp.asarray(spec.cost_target), width)


def step_moments(spec: TaskSpec, gp: Posterior, params, m: jax.Array, s: jax.Array):
    """One closed-loop step (module docstring): z ~ N(m [D], s [D, D]) -> (m', s')."""
    d = spec.state_size
    jm, js, idx = joint_features(spec, m, s)
    pm, pc, pio = pol.moments(params, jm[idx], js[idx][:, idx])
    jm, js = mm.append(jm, js, pm, pc, js[:, idx] @ pio)  # + u~ [A]
    a = pm.shape[0]
    raw = jnp.arange(jm.shape[0] - a, jm.shape[0])
    jm, js = mm.append_saturation(jm, js, raw)  # + u [A]
    u_idx = jnp.arange(jm.shape[0] - a, jm.shape[0])
    gp_idx = jnp.concatenate([idx, u_idx])
    out = moment_match(gp, jm[gp_idx], js[gp_idx][:, gp_idx])
    cross = (js[:, gp_idx] @ out.input_output)[:d]  # Cov[z, delta] [D, D]
    noise = jnp.diag(jnp.exp(2.0 * gp.hyper.log_noise_std))
    s_next = s + out.cov + noise + cross + cross.T
    return m + out.mean, 0.5 * (s_next + s_next.T)


class Prediction(NamedTuple):
    """means [H, D], covs [H, D, D] of z_1..z_H; costs [H] expected cost of each."""

    means: jax.Array
    covs: jax.Array
    costs: jax.Array


def predict_trajectory(spec: TaskSpec, gp: Posterior, params, m0: jax.Array, s0: jax.Array,
                       horizon: int, width: jax.Array) -> Prediction:
    """The moment-matched rollout of `horizon` steps from N(m0, s0) and its expected costs."""

    def body(carry, _):
        m, s = step_moments(spec, gp, params, *carry)
        return (m, s), (m, s, expected_cost(spec, m, s, width))

    _, (means, covs, costs) = jax.lax.scan(body, (m0, s0), None, length=horizon)
    return Prediction(means, covs, costs)
