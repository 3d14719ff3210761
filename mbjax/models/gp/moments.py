"""Moment matching: the exact mean and covariance of a GP's prediction at a Gaussian input.

For x ~ N(m, s) and the posterior of `posterior.py` (support Z, beta, W), Deisenroth's PILCO
equations (Deisenroth & Rasmussen 2011, eqs. 14-22; Deisenroth's thesis 2010, 2.3.2), with
nu_i = Z_i - m and Lambda_o = diag(ell_o^2):

  q_oi      = sf_o^2 |s Lambda_o^-1 + I|^-1/2 exp(-1/2 nu_i^T (s + Lambda_o)^-1 nu_i)
  mean_o    = beta_o^T q_o
  s^-1 Cov[x, f_o] = (s + Lambda_o)^-1 sum_i beta_oi q_oi nu_i                (PILCO's "V")
  R         = s (Lambda_a^-1 + Lambda_b^-1) + I,   z_ij = Lambda_a^-1 nu_i + Lambda_b^-1 nu_j
  Q_ij      = k_a(Z_i, m) k_b(Z_j, m) |R|^-1/2 exp(1/2 z_ij^T R^-1 s z_ij)
  E[f_a f_b] = beta_a^T Q beta_b + delta_ab (sf_a^2 - tr(W_a Q))
  Cov[f]    = E[f f^T] - mean mean^T

All latent (no observation noise: add exp(2 log_noise_std) on the diagonal for a noisy
observation). A deterministic RBF network is the special case W = 0 (PILCO's RBF policy).
Shapes: m [E], s [E, E]; Z [M, E], beta [O, M], W [O, M, M].
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mbjax import linalg
from mbjax.models.gp.posterior import Posterior


class Moments(NamedTuple):
    """mean [O], cov [O, O], and input_output [E, O] = s^-1 Cov[x, f] (multiply by the joint
    covariance's columns of x to get the cross-covariance with any variable jointly Gaussian
    with x, as PILCO's propagation does)."""

    mean: jax.Array
    cov: jax.Array
    input_output: jax.Array


def moment_match(post: Posterior, m: jax.Array, s: jax.Array,
                 with_variance: bool = True) -> Moments:
    """Moments of f(x) for x ~ N(m [E], s [E, E]) (see the module docstring).

    with_variance=False drops the posterior-variance term (W = 0): an RBF network's moments.
    """
    h = post.hyper
    nu = post.support - m  # [M, E]
    inv_ell2 = jnp.exp(-2.0 * h.log_lengthscale)  # [O, E]
    log_sf2 = 2.0 * h.log_signal_std  # [O]
    eye = jnp.eye(m.shape[0], dtype=s.dtype)

    def first(inv_l2, lsf2, beta):
        # (s + Lambda)^-1 = Lambda^-1/2 B^-1 Lambda^-1/2 with B = Lambda^-1/2 s Lambda^-1/2 + I,
        # whose factor also gives |s Lambda^-1 + I| = |B|.
        scaled = jnp.sqrt(inv_l2)
        factor = linalg.spd_factor(scaled[:, None] * s * scaled[None, :] + eye)
        t = scaled[:, None] * linalg.solve(factor, scaled[:, None] * nu.T)  # [E, M]
        logdet = linalg.logdet(factor)
        q = jnp.exp(lsf2 - 0.5 * logdet - 0.5 * jnp.sum(nu.T * t, axis=0))  # [M]
        return jnp.dot(beta, q), t @ (beta * q)

    mean, v = jax.vmap(first)(inv_ell2, log_sf2, post.beta)  # [O], [O, E]

    def second(ia, ib, lsa, lsb):
        """Q [M, M] of the output pair (a, b)."""
        d = ia + ib
        sqrt_d = jnp.sqrt(d)
        # R = s D + I = D^-1/2 (D^1/2 s D^1/2 + I) D^1/2: one factor for |R| and R^-1 s.
        factor = linalg.spd_factor(sqrt_d[:, None] * s * sqrt_d[None, :] + eye)
        logdet_r = linalg.logdet(factor)
        t = linalg.solve(factor, sqrt_d[:, None] * s) / sqrt_d[:, None]  # R^-1 s
        t = 0.5 * (t + t.T)
        za, zb = nu * ia, nu * ib  # [M, E]
        qa = jnp.sum((za @ t) * za, -1) - jnp.sum(nu * za, -1)  # [M]
        qb = jnp.sum((zb @ t) * zb, -1) - jnp.sum(nu * zb, -1)
        cross = (za @ t) @ zb.T
        return jnp.exp(lsa + lsb - 0.5 * logdet_r + 0.5 * (qa[:, None] + qb[None, :]) + cross)

    # Q is computed once per unordered output pair (a <= b): E[f_a f_b] is symmetric.
    o = post.beta.shape[0]
    ai, bi = np.triu_indices(o)
    q = jax.vmap(second)(inv_ell2[ai], inv_ell2[bi], log_sf2[ai], log_sf2[bi])  # [P, M, M]
    values = jnp.einsum("pm,pmn,pn->p", post.beta[ai], q, post.beta[bi])
    second_moment = jnp.zeros((o, o), values.dtype).at[ai, bi].set(values).at[bi, ai].set(values)
    if with_variance:
        diag_q = q[np.flatnonzero(ai == bi)]  # [O, M, M], pairs (a, a) in order of a
        expected_var = jnp.exp(log_sf2) - jnp.sum(post.inv_gram * diag_q, axis=(-2, -1))
        second_moment = second_moment + jnp.diag(jnp.maximum(expected_var, 0.0))
    cov = second_moment - jnp.outer(mean, mean)
    return Moments(mean, 0.5 * (cov + cov.T), v.T)


def predict_moments(post: Posterior, m: jax.Array, s: jax.Array) -> tuple[jax.Array, ...]:
    """(mean [O], cov [O, O], Cov[x, f] [E, O]) of the latent f(x), x ~ N(m, s)."""
    out = moment_match(post, m, s)
    return out.mean, out.cov, s @ out.input_output
