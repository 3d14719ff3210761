"""PILCO's policies (before squashing): an RBF network and a linear map, each with a point
evaluation and closed-form moments at a Gaussian input.

RBF: pi(x) = sum_i w_i exp(-1/2 (x - c_i)^T Lambda^-1 (x - c_i)), i.e. the mean of a GP with
support c, weights w and unit signal variance, so its moments are `moment_match` without the
posterior-variance term (the toolbox's RBF controller is that deterministic GP).
Linear: pi(x) = W x + b, moments W m + b, W s W^T, input-output s^-1 Cov = W^T.
Shapes: x [F] policy features, A actions, B basis functions.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from mbjax.models.gp import Hyper, Posterior, moment_match, predict

POLICIES = ("rbf", "linear")


class RBFParams(NamedTuple):
    """centres [B, F], log_lengthscale [A, F], weights [A, B]."""

    centres: jax.Array
    log_lengthscale: jax.Array
    weights: jax.Array


class LinearParams(NamedTuple):
    """weights [A, F], bias [A]."""

    weights: jax.Array
    bias: jax.Array


def _as_posterior(p: RBFParams) -> Posterior:
    a, b = p.weights.shape
    zeros = jnp.zeros((a,), p.weights.dtype)
    return Posterior(p.centres, p.weights, jnp.zeros((a, b, b), p.weights.dtype),
                     Hyper(p.log_lengthscale, zeros, zeros))


def init_params(kind: str, num_features: int, num_actions: int, num_basis: int,
                mean: jax.Array, cov: jax.Array, key: jax.Array,
                lengthscale: jax.Array | None = None):
    """PILCO's initialisation (the toolbox's settings_cp.m): RBF centres drawn from N(mean [F],
    cov [F, F]) (the toolbox: around the start features with identity covariance, so the basis
    functions cover the states of a swing-up, not only the start), lengthscales `lengthscale`
    [F] (default 1), weights 0.1 N(0, 1); linear: small random W, b 0."""
    k_c, k_w = jax.random.split(key)
    if kind == "rbf":
        centres = jax.random.multivariate_normal(k_c, mean, cov, (num_basis,))
        ell = jnp.ones((num_features,)) if lengthscale is None else lengthscale
        return RBFParams(centres, jnp.broadcast_to(jnp.log(ell), (num_actions, num_features)),
                         0.1 * jax.random.normal(k_w, (num_actions, num_basis)))
    return LinearParams(0.1 * jax.random.normal(k_w, (num_actions, num_features)),
                        jnp.zeros((num_actions,)))


def evaluate(params, x: jax.Array) -> jax.Array:
    """The unsquashed action [A] at features x [F]."""
    if isinstance(params, RBFParams):
        return predict(_as_posterior(params), x[None])[0][0]
    return params.weights @ x + params.bias


def moments(params, m: jax.Array, s: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(mean [A], cov [A, A], input_output [F, A] = s^-1 Cov[x, pi(x)]) for x ~ N(m, s)."""
    if isinstance(params, RBFParams):
        out = moment_match(_as_posterior(params), m, s, with_variance=False)
        return out.mean, out.cov, out.input_output
    w = params.weights
    return w @ m + params.bias, w @ s @ w.T, w.T
