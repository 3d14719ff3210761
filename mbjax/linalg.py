"""Symmetric positive definite linear algebra that stays unbatched under `vmap`.

Why this module: on the CPU, jaxlib runs a *batched* Cholesky or triangular solve (what `vmap`
makes of `jnp.linalg.cholesky` / `solve_triangular`) as LAPACK calls split over XLA's intra-op
thread pool, and the calling pool thread blocks until they finish (`jax::ParallelBatchMap`).
When XLA:CPU runs two such ops concurrently, each holds a pool thread while waiting for work
queued behind the other: on a 2-thread pool (a 2-core machine) PILCO's GP, vmapped over output
dimensions, deadlocked with every thread in a futex wait (gdb: `lapack_spotrf_ffi` ->
`jax::ParallelBatchMap`; Dreamer's vmapped orthogonal init did the same with QR). Here the
factorisation maps over any batch one matrix at a time (`one_at_a_time`: `custom_vmap` +
`lax.map`), so every LAPACK call is unbatched.

`custom_vmap` functions have no reverse-mode rule, so the factorisation carries a `custom_jvp`
whose tangent uses only matrix products with the factor and its inverse (both computed in the
primal, unbatched): products batch and transpose natively, so `grad` works under `vmap`.
For A = L L^T and X = L^-1 dA L^-T:  dL = L Phi(X),  d(L^-1) = -Phi(X) L^-1, with Phi the lower
triangle with a halved diagonal (Murray 2016, "Differentiation of the Cholesky decomposition").

Solves use the explicit inverse factor (two matrix products), which is as accurate as two
triangular solves for the well-conditioned, jittered matrices this is for (GP Gram matrices,
moment-matching covariances). Shapes: a [n, n]; callers vmap over anything else.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp


class Factor(NamedTuple):
    """chol [n, n] lower triangular with chol @ chol.T = a; inv [n, n] = chol^-1."""

    chol: jax.Array
    inv: jax.Array


def one_at_a_time(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """fn of one argument, applied to one batch element at a time under `vmap` (`lax.map`)
    instead of batched: for LAPACK-backed work (Cholesky, QR) that must not become a batched
    CPU kernel (module docstring). No reverse-mode rule of its own (`custom_vmap`)."""

    @jax.custom_batching.custom_vmap
    def one(x: Any) -> Any:
        return fn(x)

    @one.def_vmap
    def _(axis_size, in_batched, x):
        del axis_size
        out = jax.lax.map(one, x) if in_batched[0] else one(x)
        return out, jax.tree.map(lambda _: bool(in_batched[0]), out)

    return one


def _factor(a: jax.Array) -> Factor:
    chol = jnp.linalg.cholesky(a)
    eye = jnp.eye(a.shape[-1], dtype=a.dtype)
    return Factor(chol, jax.scipy.linalg.solve_triangular(chol, eye, lower=True))


_factor_unbatched = one_at_a_time(_factor)


def _phi(x: jax.Array) -> jax.Array:
    """Lower triangle of x with its diagonal halved."""
    return jnp.tril(x) - 0.5 * jnp.diag(jnp.diagonal(x))


@jax.custom_jvp
def spd_factor(a: jax.Array) -> Factor:
    """Cholesky factor and its inverse of a symmetric positive definite a [n, n] (only the
    lower triangle is read, as `jnp.linalg.cholesky`; NaN where a is not positive definite)."""
    return _factor_unbatched(a)


@spd_factor.defjvp
def _spd_factor_jvp(primals, tangents):
    (a,), (da,) = primals, tangents
    f = spd_factor(a)
    da = 0.5 * (da + da.T)  # the derivative of the symmetric input
    phi = _phi(f.inv @ da @ f.inv.T)
    return f, Factor(f.chol @ phi, -phi @ f.inv)


def logdet(f: Factor) -> jax.Array:
    """log |a| from its factor."""
    return 2.0 * jnp.sum(jnp.log(jnp.diagonal(f.chol)))


def solve(f: Factor, b: jax.Array) -> jax.Array:
    """a^-1 b for b [n] or [n, k]."""
    return f.inv.T @ (f.inv @ b)


def inverse(f: Factor) -> jax.Array:
    """a^-1 [n, n] (symmetric)."""
    return f.inv.T @ f.inv
