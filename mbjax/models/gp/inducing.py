"""Choosing the support (inducing inputs) of a sparse GP: greedy conditional variance.

Pick, one at a time, the data row whose latent value is worst explained by the rows picked so
far, i.e. the largest diagonal of the Nystrom residual K - K_nm K_mm^-1 K_mn (pivoted Cholesky;
Burt, Rasmussen & van der Wilk 2020, "Convergence of sparse variational inference in Gaussian
process regression", sec. 5, recommend it as the inducing-point initialisation). With one GP per
output dimension the residuals are normalised by each output's sf^2 and summed, so the shared
support serves every output.

Why not a uniform random subset: the data of a fast swing-up are dense near the start and
sparse elsewhere, and a random subset copies that density. On PILCO's cart-pole data (670 rows,
kernel fitted on a random subset) the FITC training MSE with 150 inducing inputs was 0.027
greedy against 0.114 random, and with 250 it was 0.0013 against 0.147.

Cost: O(O n M^2) for n rows, M picks and O outputs, one `lax.fori_loop` over the picks.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mbjax.models.gp.kernel import Hyper, se_ard


def greedy_variance_subset(x: jax.Array, mask: jax.Array, hyper: Hyper,
                           size: int) -> tuple[jax.Array, jax.Array]:
    """x [n, E], mask [n] (1.0 valid), hyper (per-output [O, ...] leaves) -> (indices [size],
    used [size] 1.0 where the pick is a valid row: fewer valid rows than `size` leave the tail
    unused). Valid rows are picked before any masked one; no row twice."""
    n = x.shape[0]
    ell = jnp.exp(hyper.log_lengthscale)  # [O, E]
    num_out = ell.shape[0]

    def pick(i, carry):
        """One pivoted-Cholesky step: the row with the largest summed normalised residual."""
        idx, chol, resid, taken = carry
        score = jnp.where(taken, -jnp.inf, jnp.where(mask > 0, jnp.sum(resid, 0), -1.0))
        j = jnp.argmax(score)
        # Correlation (kernel / sf^2) of row j with every row, per output: [O, n].
        k_j = jax.vmap(lambda ell_o: se_ard(x[j][None], x, ell_o, 1.0)[0])(ell)
        pivot = jnp.sqrt(jnp.maximum(resid[:, j], 1e-12))  # [O]
        col = (k_j - jnp.einsum("om,onm->on", chol[:, j], chol)) / pivot[:, None]
        chol = chol.at[:, :, i].set(col)
        resid = jnp.maximum(resid - col**2, 0.0)
        return idx.at[i].set(j.astype(idx.dtype)), chol, resid, taken.at[j].set(True)

    start = (jnp.zeros((size,), jnp.int32), jnp.zeros((num_out, n, size), x.dtype),
             jnp.ones((num_out, n), x.dtype), jnp.zeros((n,), bool))
    idx, *_ = jax.lax.fori_loop(0, size, pick, start)
    used = (jnp.arange(size) < jnp.sum(mask > 0)).astype(mask.dtype)
    return idx, used
