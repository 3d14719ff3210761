"""GP posteriors in one form for exact and sparse (FITC) GPs, and exact prediction.

Both are stored as support points Z [M, E], weights beta [O, M] and a matrix W [O, M, M]:

    mean_o(x) = k_o(x, Z) beta_o,     var_o(x) = sf_o^2 - k_o(x, Z) W_o k_o(Z, x)   (latent f)

exact:  Z = X (all n rows), beta = (K + sn^2 I)^-1 y, W = (K + sn^2 I)^-1.
FITC (Snelson & Ghahramani 2006; PILCO's gp2): Z = inducing inputs, Lambda = diag(sf^2 -
  diag(Q_nn) + sn^2) (+ the jitter, as in the exact K), B = K_mm + K_mn Lambda^-1 K_nm,
  beta = B^-1 K_mn Lambda^-1 y, W = K_mm^-1 - B^-1.
So moment matching (`moments.py`) and prediction are one code path for both. Masked data rows
and masked inducing points get zero weight (beta and W rows/columns 0).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from mbjax import linalg
from mbjax.models.gp.kernel import Hyper, masked_gram, se_ard


class Posterior(NamedTuple):
    """support [M, E], beta [O, M], inv_gram [O, M, M] (W above), hyper (per-output logs)."""

    support: jax.Array
    beta: jax.Array
    inv_gram: jax.Array
    hyper: Hyper


def exact_posterior(hyper: Hyper, x: jax.Array, y: jax.Array, mask: jax.Array,
                    jitter: float) -> Posterior:
    """The exact posterior of every output on the valid rows of x [n, E], y [n, O]."""

    def one(h: Hyper, y_o):
        sf2 = jnp.exp(2.0 * h.log_signal_std)
        k = masked_gram(x, mask, jnp.exp(h.log_lengthscale), sf2,
                        jnp.exp(2.0 * h.log_noise_std) + jitter * sf2)
        factor = linalg.spd_factor(k)
        inv = linalg.inverse(factor) * (mask[:, None] * mask[None, :])
        beta = linalg.solve(factor, y_o * mask) * mask
        return beta, inv

    beta, inv = jax.vmap(one, in_axes=(0, 1))(hyper, y)
    return Posterior(x, beta, inv, hyper)


def fitc_posterior(hyper: Hyper, x: jax.Array, y: jax.Array, mask: jax.Array, z: jax.Array,
                   z_mask: jax.Array, jitter: float) -> Posterior:
    """The FITC posterior with inducing inputs z [M, E] (z_mask [M]: 1.0 used) on the valid rows
    of x [n, E], y [n, O]."""

    def one(h: Hyper, y_o):
        ell, sf2 = jnp.exp(h.log_lengthscale), jnp.exp(2.0 * h.log_signal_std)
        sn2 = jnp.exp(2.0 * h.log_noise_std)
        kmm = masked_gram(z, z_mask, ell, sf2, jitter * sf2)
        kmn = se_ard(z, x, ell, sf2) * z_mask[:, None] * mask[None, :]
        # Whitened form (B = L (I + A A^T) L^T with Kmm = L L^T, A = L^-1 Kmn Lambda^-1/2): its
        # Cholesky stays well conditioned in float32 where B's own does not.
        l_inv = linalg.spd_factor(kmm).inv
        v = l_inv @ kmn  # [M, n]
        lam = jnp.where(mask > 0, jnp.maximum(sf2 - jnp.sum(v * v, 0), 0.0) + sn2 + jitter * sf2,
                        1.0)
        a = v / jnp.sqrt(lam)
        eye = jnp.eye(z.shape[0], dtype=kmm.dtype)
        factor_b = linalg.spd_factor(eye + a @ a.T)
        inner = linalg.solve(factor_b, a @ (y_o * mask / jnp.sqrt(lam)))
        beta = l_inv.T @ inner
        # W = Kmm^-1 - B^-1 = L^-T (I - (I + A A^T)^-1) L^-1
        w = l_inv.T @ (eye - linalg.inverse(factor_b)) @ l_inv
        outer = z_mask[:, None] * z_mask[None, :]
        return beta * z_mask, 0.5 * (w + w.T) * outer

    beta, inv = jax.vmap(one, in_axes=(0, 1))(hyper, y)
    return Posterior(z, beta, inv, hyper)


def predict(post: Posterior, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Exact prediction at deterministic inputs x [R, E] -> (mean [R, O], latent var [R, O])
    (add exp(2 log_noise_std) for the variance of a noisy observation)."""

    def one(h: Hyper, beta, inv):
        k = se_ard(x, post.support, jnp.exp(h.log_lengthscale), jnp.exp(2.0 * h.log_signal_std))
        var = jnp.exp(2.0 * h.log_signal_std) - jnp.sum((k @ inv) * k, axis=-1)
        return k @ beta, jnp.maximum(var, 0.0)

    mean, var = jax.vmap(one)(post.hyper, post.beta, post.inv_gram)
    return mean.T, var.T
