"""Closed-form moments of the nonlinear maps in PILCO's closed loop (Deisenroth & Rasmussen
2011; the PILCO toolbox's gSin, gTrig, gSat and lossSat).

Everything acts on a *joint* Gaussian (mean [n], cov [n, n]) over all variables so far, and
`append` extends it with new variables given their moments and their cross-covariance with the
old ones, so later maps see every correlation (PILCO's propagation does the same).
For sin, Stein's lemma gives the cross-covariance: Cov[y, sin x] = Cov[y, x] E[cos x] for any y
jointly Gaussian with x.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from mbjax import linalg


def append(mean: jax.Array, cov: jax.Array, new_mean: jax.Array, new_cov: jax.Array,
           cross: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The joint Gaussian [old, new]: mean [n + k], cov [n + k, n + k]; cross = Cov[old, new]
    [n, k]."""
    top = jnp.concatenate([cov, cross], axis=1)
    bottom = jnp.concatenate([cross.T, new_cov], axis=1)
    return jnp.concatenate([mean, new_mean]), jnp.concatenate([top, bottom], axis=0)


def sin_moments(m: jax.Array, s: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """For x ~ N(m [k], s [k, k]): (E[sin x] [k], Cov[sin x] [k, k], E[cos x] [k]).

    E[sin x_i sin x_j] = 1/2 (E cos(x_i - x_j) - E cos(x_i + x_j)), E cos(a) = exp(-Var a / 2)
    cos(E a). E[cos x] is Stein's factor for Cov[., sin x].
    """
    v = jnp.diagonal(s)
    mean = jnp.exp(-v / 2.0) * jnp.sin(m)
    vsum = v[:, None] + v[None, :]
    minus = jnp.exp(-(vsum - 2.0 * s) / 2.0) * jnp.cos(m[:, None] - m[None, :])
    plus = jnp.exp(-(vsum + 2.0 * s) / 2.0) * jnp.cos(m[:, None] + m[None, :])
    cov = 0.5 * (minus - plus) - jnp.outer(mean, mean)
    return mean, cov, jnp.exp(-v / 2.0) * jnp.cos(m)


def append_trig(mean: jax.Array, cov: jax.Array, angles: tuple[int, ...]):
    """Appends [sin x_a for a in angles] then [cos x_a for a in angles] to the joint Gaussian."""
    idx = jnp.asarray(angles + angles)
    shift = jnp.concatenate([jnp.zeros(len(angles)), jnp.full(len(angles), math.pi / 2)])
    m, s = mean[idx] + shift, cov[idx][:, idx]  # cos x = sin(x + pi/2)
    new_mean, new_cov, stein = sin_moments(m, s)
    return append(mean, cov, new_mean, new_cov, cov[:, idx] * stein[None, :])


def append_saturation(mean: jax.Array, cov: jax.Array, index: jax.Array, limit: float = 1.0):
    """Appends u = limit (9 sin x + sin 3x) / 8 of the variables at `index` [k] (PILCO's gSat: a
    smooth squashing onto [-limit, limit], its third-order Fourier approximation of a hard
    clip)."""
    k = index.shape[0]
    m, s = mean[index], cov[index][:, index]
    lift = jnp.concatenate([jnp.eye(k), 3.0 * jnp.eye(k)])  # [2k, k]: [x, 3x]
    sm, sc, stein = sin_moments(lift @ m, lift @ s @ lift.T)
    mix = limit * jnp.concatenate([9.0 / 8.0 * jnp.eye(k), 1.0 / 8.0 * jnp.eye(k)], axis=1)
    # Cov[y, u] = Cov[y, x] * limit (9/8 E cos x + 3/8 E cos 3x)
    factor = limit * (9.0 / 8.0 * stein[:k] + 3.0 / 8.0 * stein[k:])
    return append(mean, cov, mix @ sm, mix @ sc @ mix.T, cov[:, index] * factor[None, :])


def saturate(x: jax.Array, limit: float = 1.0) -> jax.Array:
    """The deterministic squashing of `append_saturation`."""
    return limit * (9.0 * jnp.sin(x) + jnp.sin(3.0 * x)) / 8.0


def expected_saturating_cost(m: jax.Array, s: jax.Array, target: jax.Array,
                             width: jax.Array) -> jax.Array:
    """E[1 - exp(-|y - target|^2 / (2 width^2))] for y ~ N(m [k], s [k, k]) (PILCO's lossSat):
    1 - |I + s W|^-1/2 exp(-1/2 d^T W (I + s W)^-1 d), W = I / width^2, d = m - target."""
    factor = linalg.spd_factor(jnp.eye(m.shape[0]) + s / width**2)  # I + s W, symmetric
    d = m - target
    quad = d @ linalg.solve(factor, d) / width**2
    return 1.0 - jnp.exp(-0.5 * (quad + linalg.logdet(factor)))


def saturating_cost(y: jax.Array, target: jax.Array, width: jax.Array) -> jax.Array:
    """1 - exp(-|y - target|^2 / (2 width^2)) at a point y [k]."""
    return 1.0 - jnp.exp(-0.5 * jnp.sum((y - target) ** 2) / width**2)
