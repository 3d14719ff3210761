"""Per-time-step linear-Gaussian dynamics fitted with a normal-inverse-Wishart prior.

Guided policy search under unknown dynamics (Levine & Abbeel 2014, "Learning Neural Network
Policies with Guided Policy Search under Unknown Dynamics", NIPS, section 3.2) fits, at every
time step t, x_{t+1} ~ N(F_t [x_t; u_t] + f_t, Sigma_t) from the handful of rollouts of the
current controller. A joint Gaussian over y = [x_t; u_t; x_{t+1}] is estimated from those N
samples with a normal-inverse-Wishart (NIW) prior built from *all* transitions seen so far, then
conditioned on [x_t; u_t]. The paper's prior is a GMM over all data; here it is one global
Gaussian (the GMM's single-cluster case), kept as running moments so no replay is stored.

NIW posterior (weights w_i, n = sum w_i, weighted mean ybar, scatter S = sum w_i (y_i - ybar)
(y_i - ybar)'), prior (mu0, Phi, m, n0):

    mu    = (m mu0 + n ybar) / (m + n)
    Psi   = Phi + S + (m n / (m + n)) (ybar - mu0)(ybar - mu0)'
    Sigma = Psi / (n0 + n)                 (the estimate of Levine & Abbeel's reference code)

with Phi = n0 * Sigma_global, mu0 = mean_global and m = n0 = `prior_strength` pseudo-samples.
With no sample at a step (every rollout had terminated) the fit is the global linear fit.

Shapes: S state (observation) size, A action size, D = 2S + A, T steps, N rollouts.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from mbjax.planners.lqr import symmetrize


class Moments(NamedTuple):
    """Weighted running moments of points y [D]: count [], mean [D], scatter [D, D]
    (sum of w (y - mean)(y - mean)')."""

    count: jax.Array
    mean: jax.Array
    scatter: jax.Array


class NIWPrior(NamedTuple):
    """mu0 [D], Phi [D, D], m [] (strength of mu0), n0 [] (degrees of freedom)."""

    mu0: jax.Array
    phi: jax.Array
    m: jax.Array
    n0: jax.Array


class LinearGaussianDynamics(NamedTuple):
    """x_{t+1} ~ N(F_t [x; u] + f_t, cov_t): F [T, S, S+A], f [T, S], cov [T, S, S];
    x0_mean [S], x0_cov [S, S]: the initial-state distribution."""

    F: jax.Array
    f: jax.Array
    cov: jax.Array
    x0_mean: jax.Array
    x0_cov: jax.Array


def empty_moments(dim: int) -> Moments:
    return Moments(jnp.zeros((), jnp.float32), jnp.zeros((dim,), jnp.float32),
                   jnp.zeros((dim, dim), jnp.float32))


def moments_of(ys: jax.Array, weights: jax.Array) -> Moments:
    """Moments of points ys [N, D] with weights [N] (a zero total gives mean 0)."""
    count = jnp.sum(weights)
    mean = jnp.sum(weights[:, None] * ys, axis=0) / jnp.maximum(count, 1e-12)
    diff = ys - mean
    return Moments(count, mean, jnp.einsum("n,ni,nj->ij", weights, diff, diff))


def merge_moments(a: Moments, b: Moments) -> Moments:
    """The moments of the union of two weighted point sets (Chan et al.'s pairwise update,
    stable in float32 where sum-of-squares accumulation is not)."""
    count = a.count + b.count
    frac = b.count / jnp.maximum(count, 1e-12)
    delta = b.mean - a.mean
    mean = a.mean + frac * delta
    scatter = a.scatter + b.scatter + jnp.outer(delta, delta) * a.count * frac
    return Moments(count, mean, scatter)


def global_prior(moments: Moments, strength: jax.Array, regularization: float) -> NIWPrior:
    """The NIW prior of one global Gaussian fit: mu0 = mean, Phi = n0 * (covariance + reg I),
    m = n0 = strength."""
    dim = moments.mean.shape[0]
    cov = moments.scatter / jnp.maximum(moments.count, 1.0) + regularization * jnp.eye(dim)
    return NIWPrior(moments.mean, strength * symmetrize(cov), strength, strength)


def niw_posterior(prior: NIWPrior, ys: jax.Array, weights: jax.Array) -> tuple[jax.Array,
                                                                               jax.Array]:
    """(mean [D], covariance [D, D]) of ys [N, D] (weights [N]) under `prior` (module
    docstring)."""
    data = moments_of(ys, weights)
    n = data.count
    mean = (prior.m * prior.mu0 + n * data.mean) / (prior.m + n)
    diff = data.mean - prior.mu0
    psi = prior.phi + data.scatter + (prior.m * n / (prior.m + n)) * jnp.outer(diff, diff)
    return mean, symmetrize(psi) / (prior.n0 + n)


def condition(mean: jax.Array, cov: jax.Array, state_size: int,
              regularization: float) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Condition the joint Gaussian of y = [x; u; x'] (mean [D], cov [D, D]) on [x; u]:
    (F [S, S+A], f [S], cov [S, S]). `regularization` is added to the [x; u] block's diagonal
    (as in Levine & Abbeel's code) so a degenerate sample set still conditions."""
    d = mean.shape[0] - state_size
    cov_in = cov[:d, :d] + regularization * jnp.eye(d, dtype=cov.dtype)
    F = jnp.linalg.solve(cov_in, cov[:d, d:]).T
    f = mean[d:] - F @ mean[:d]
    out = symmetrize(cov[d:, d:] - F @ cov_in @ F.T)
    return F, f, out


def transitions(xs: jax.Array, us: jax.Array, next_xs: jax.Array) -> jax.Array:
    """y = [x_t; u_t; x_{t+1}]: xs [..., S], us [..., A], next_xs [..., S] -> [..., D]."""
    return jnp.concatenate([xs, us, next_xs], axis=-1)


def fit_dynamics(prior: NIWPrior, xs: jax.Array, us: jax.Array, next_xs: jax.Array,
                 valid: jax.Array, regularization: float) -> LinearGaussianDynamics:
    """Per-step NIW fits (vmapped over t) from rollouts xs [N, T, S], us [N, T, A], next_xs
    [N, T, S] with valid [N, T] (1.0 where the transition happened: rollouts stop at
    termination). The initial-state distribution is the rollouts' x0 sample moments plus
    `regularization` I."""
    state_size = xs.shape[-1]
    ys = jnp.swapaxes(transitions(xs, us, next_xs), 0, 1)  # [T, N, D]

    def one(y, w):
        return condition(*niw_posterior(prior, y, w), state_size, regularization)

    F, f, cov = jax.vmap(one)(ys, valid.T)
    x0 = moments_of(xs[:, 0], jnp.ones(xs.shape[0], xs.dtype))
    x0_cov = x0.scatter / xs.shape[0] + regularization * jnp.eye(state_size, dtype=xs.dtype)
    return LinearGaussianDynamics(F, f, cov, x0.mean, symmetrize(x0_cov))
