"""`mbjax.linalg` (SPD factor unbatched under vmap, with AD) against numpy/jnp references in
float64, its lowering (no batched LAPACK call under vmap), and `mbjax.precision`."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mbjax import linalg
from mbjax.precision import float32_state, float64_step


def _spd(seed: int, batch: int = 3, n: int = 5):
    rng = np.random.default_rng(seed)
    b = rng.normal(size=(batch, n, n))
    return b @ b.transpose(0, 2, 1) + 0.5 * np.eye(n), rng.normal(size=(batch, n))


@pytest.mark.parametrize("seed", [0, 1])
def test_factor_solve_and_logdet_equal_numpy_in_float64(seed):
    a, y = _spd(seed)
    with jax.enable_x64(True):
        f = jax.vmap(linalg.spd_factor)(jnp.asarray(a))
        np.testing.assert_allclose(f.chol, np.linalg.cholesky(a), atol=1e-10)
        np.testing.assert_allclose(f.inv, np.linalg.inv(np.linalg.cholesky(a)), atol=1e-8)
        np.testing.assert_allclose(jax.vmap(linalg.logdet)(f), np.linalg.slogdet(a)[1],
                                   atol=1e-10)
        np.testing.assert_allclose(jax.vmap(linalg.solve)(f, jnp.asarray(y)),
                                   np.linalg.solve(a, y[..., None])[..., 0], atol=1e-8)
        np.testing.assert_allclose(jax.vmap(linalg.inverse)(f), np.linalg.inv(a), atol=1e-8)


def _objective(factor_fn):
    """A scalar using the factor, its inverse, a solve and the log determinant."""

    def f(a, y):
        chol, inv = factor_fn(a)
        return (2.0 * jnp.sum(jnp.log(jnp.diagonal(chol))) + y @ (inv.T @ (inv @ y))
                + jnp.sum(jnp.sin(chol)) + jnp.sum(inv**2))

    return f


def _reference_factor(a):
    chol = jnp.linalg.cholesky(a)
    return chol, jax.scipy.linalg.solve_triangular(chol, jnp.eye(a.shape[0]), lower=True)


@pytest.mark.parametrize("seed", [0, 1])
def test_gradients_and_second_order_equal_jax_own_cholesky(seed):
    """grad (reverse mode, vmapped) and a Hessian-vector product (forward over reverse)
    equal those through jnp.linalg.cholesky, for a symmetric perturbation."""
    a, y = _spd(seed)
    with jax.enable_x64(True):
        a, y = jnp.asarray(a), jnp.asarray(y)
        mine, ref = _objective(linalg.spd_factor), _objective(_reference_factor)
        g_mine = jax.vmap(jax.grad(mine, argnums=(0, 1)))(a, y)
        g_ref = jax.vmap(jax.grad(ref, argnums=(0, 1)))(a, y)
        sym = lambda g: 0.5 * (g + jnp.swapaxes(g, -1, -2))  # only the symmetric part acts
        np.testing.assert_allclose(sym(g_mine[0]), sym(g_ref[0]), atol=1e-8)
        np.testing.assert_allclose(g_mine[1], g_ref[1], atol=1e-8)
        v = sym(jnp.asarray(np.random.default_rng(seed + 7).normal(size=a.shape)))

        def hvp(fn, a_i, y_i, v_i):
            return jax.jvp(lambda t: jax.grad(fn)(t, y_i), (a_i,), (v_i,))[1]

        np.testing.assert_allclose(sym(jax.vmap(lambda *z: hvp(mine, *z))(a, y, v)),
                                   sym(jax.vmap(lambda *z: hvp(ref, *z))(a, y, v)), atol=1e-7)


def test_vmapped_gradient_lowers_to_unbatched_lapack_calls():
    """Every LAPACK custom call of a vmapped (twice) gradient works on one [n, n] matrix: the
    batched kernels are what deadlocked XLA:CPU's 2-thread pool (module docstring)."""
    a, y = _spd(0)
    a2, y2 = np.stack([a, a]), np.stack([y, y])
    fn = jax.vmap(jax.vmap(jax.grad(_objective(linalg.spd_factor))))
    hlo = jax.jit(fn).lower(jnp.asarray(a2, jnp.float32), jnp.asarray(y2, jnp.float32))
    text = hlo.compile().as_text()
    lines = [ln for ln in text.split("\n") if "custom_call_target=\"lapack" in ln]
    assert lines, "expected LAPACK calls on the CPU"
    for ln in lines:
        shape = ln.split("=", 1)[1].split("{")[0].split("[")[1].split("]")[0]
        assert shape.count(",") == 1, ln  # [n, n]: no batch dimension


def test_float64_step_computes_in_double_precision_and_keeps_float32_state():
    def step(state):
        x, count = state
        tiny = (x + 1e-9) - x  # 0 in float32, 1e-9 in float64
        return (tiny * 1e9, count + 1), jnp.arange(3)

    state = (jnp.ones((2,), jnp.float32), jnp.int32(0))
    with pytest.raises(RuntimeError, match="float64"):
        jax.jit(float64_step(step))(state)
    with jax.enable_x64(True):
        (x, count), idx = jax.jit(float64_step(step))(state)
    np.testing.assert_allclose(x, 1.0, rtol=1e-6)
    assert x.dtype == jnp.float32 and count.dtype == jnp.int32 and idx.dtype == jnp.int32
    (x32, _), _ = jax.jit(step)(state)
    assert float(x32[0]) != pytest.approx(1.0)
    with jax.enable_x64(True):
        out = float32_state(lambda: {"a": jnp.zeros(2), "k": jax.random.PRNGKey(0)})()
    assert out["a"].dtype == jnp.float32 and out["k"].dtype == jnp.uint32
