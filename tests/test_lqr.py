"""Tests for mbjax.planners.lqr: the Riccati recursion against the stacked KKT system of the same
problem (numpy, float64), the infinite-horizon gain against scipy.linalg.solve_discrete_are.

float64 runs inside `jax.enable_x64(True)` (a context manager): x64 does not leak into other
tests.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from mbjax.planners import lqr


def random_lq(seed: int, s: int = 4, a: int = 2, horizon: int = 7) -> dict:
    """A random time-varying LQ problem (numpy float64) with a strictly convex stage cost."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(horizon, s, s)) * 0.5 + np.eye(s)
    B = rng.normal(size=(horizon, s, a))
    blocks = []
    for _ in range(horizon + 1):
        L = rng.normal(size=(s + a, s + a))
        blocks.append(L @ L.T / (s + a) + 0.1 * np.eye(s + a))
    blocks = np.array(blocks)
    return dict(
        A=A, B=B, c=rng.normal(size=(horizon, s)), Q=blocks[:, :s, :s],
        q=rng.normal(size=(horizon + 1, s)), R=blocks[:-1, s:, s:], r=rng.normal(size=(horizon, a)),
        M=blocks[:-1, :s, s:],
    )


def kkt_solve(p: dict, x0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The optimum (xs [H+1, S], us [H, A]) of the same problem from the stacked KKT system.

    Variables z = (u_0 .. u_{H-1}, x_1 .. x_H); equality constraints x_{t+1} = A x_t + B u_t + c.
    """
    H, s, a = p["B"].shape
    nu, nx = H * a, H * s
    hess, grad = np.zeros((nu + nx, nu + nx)), np.zeros(nu + nx)
    ui = lambda t: slice(t * a, (t + 1) * a)  # noqa: E731
    xi = lambda t: slice(nu + (t - 1) * s, nu + t * s)  # noqa: E731  (x_t, t >= 1)
    for t in range(H):
        hess[ui(t), ui(t)] = p["R"][t]
        grad[ui(t)] = p["r"][t]
        if t == 0:
            grad[ui(0)] += p["M"][0].T @ x0
        else:
            hess[xi(t), xi(t)] = p["Q"][t]
            hess[xi(t), ui(t)] = p["M"][t]
            hess[ui(t), xi(t)] = p["M"][t].T
            grad[xi(t)] = p["q"][t]
    hess[xi(H), xi(H)] = p["Q"][H]
    grad[xi(H)] = p["q"][H]
    C, d = np.zeros((nx, nu + nx)), np.zeros(nx)
    for t in range(H):  # x_{t+1} - A x_t - B u_t = c_t
        rows = slice(t * s, (t + 1) * s)
        C[rows, xi(t + 1)] = np.eye(s)
        C[rows, ui(t)] = -p["B"][t]
        if t == 0:
            d[rows] = p["c"][0] + p["A"][0] @ x0
        else:
            C[rows, xi(t)] = -p["A"][t]
            d[rows] = p["c"][t]
    kkt = np.block([[hess, C.T], [C, np.zeros((nx, nx))]])
    z = np.linalg.solve(kkt, np.concatenate([-grad, d]))[: nu + nx]
    return np.concatenate([x0[None], z[nu:].reshape(H, s)]), z[:nu].reshape(H, a)


def rel_err(x, y) -> float:
    return float(np.max(np.abs(np.asarray(x) - y)) / np.max(np.abs(y)))


@pytest.mark.parametrize("seed", [0, 1])
def test_lqr_equals_kkt_solution(seed):
    p = random_lq(seed)
    x0 = np.random.default_rng(seed + 10).normal(size=4)
    xs_kkt, us_kkt = kkt_solve(p, x0)
    with jax.enable_x64(True):
        problem = lqr.LQRProblem(**{k: jnp.asarray(v) for k, v in p.items()})
        sol = jax.jit(lqr.lqr_solve)(problem)
        xs, us = lqr.lqr_rollout(problem, sol, jnp.asarray(x0))
        assert us.dtype == jnp.float64
        assert sol.K.shape == (7, 2, 4) and sol.k.shape == (7, 2) and sol.P.shape == (8, 4, 4)
        cost = float(lqr.lqr_cost(problem, xs, us))
        value = float(0.5 * x0 @ sol.P[0] @ x0 + sol.p[0] @ x0)
        # The gains: u_0 is affine in x0 with slope K_0 and offset k_0 (KKT from unit x0s).
        u0_at = {i: kkt_solve(p, e)[1][0] for i, e in enumerate(np.eye(4))}
        k0 = kkt_solve(p, np.zeros(4))[1][0]
        np.testing.assert_allclose(np.asarray(sol.k[0]), k0, rtol=1e-5, atol=1e-8)
        for i in range(4):
            np.testing.assert_allclose(np.asarray(sol.K[0][:, i]), u0_at[i] - k0, rtol=1e-5,
                                       atol=1e-8)
        # The value function differs from the cost only by an x0-independent constant.
        cost0 = float(lqr.lqr_cost(problem, *lqr.lqr_rollout(problem, sol, jnp.zeros(4))))
        value0 = 0.0
    assert rel_err(us, us_kkt) < 1e-5
    assert rel_err(xs, xs_kkt) < 1e-5
    assert abs((cost - value) - (cost0 - value0)) < 1e-8 * max(1.0, abs(cost))


def test_lqr_float32_close_to_kkt_and_shapes_of_time_invariant():
    p = random_lq(3, s=3, a=1, horizon=5)
    x0 = np.array([1.0, -0.5, 0.2])
    xs_kkt, us_kkt = kkt_solve(p, x0)
    problem = lqr.LQRProblem(**{k: jnp.asarray(v, jnp.float32) for k, v in p.items()})
    xs, us = lqr.lqr_rollout(problem, lqr.lqr_solve(problem), jnp.asarray(x0, jnp.float32))
    assert us.dtype == jnp.float32
    assert rel_err(us, us_kkt) < 1e-3
    ti = lqr.time_invariant(np.eye(3), np.ones((3, 1)), np.eye(3), np.eye(1), 4)
    assert ti.A.shape == (4, 3, 3) and ti.Q.shape == (5, 3, 3) and ti.M.shape == (4, 3, 1)
    with pytest.raises(ValueError, match="horizon=0 is invalid"):
        lqr.time_invariant(np.eye(3), np.ones((3, 1)), np.eye(3), np.eye(1), 0)


def dare_case(seed: int, s: int = 4, a: int = 2, cross: bool = True):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(s, s)) * 0.6 + 0.3 * np.eye(s)  # typically unstable
    B = rng.normal(size=(s, a))
    L = rng.normal(size=(s + a, s + a))
    block = L @ L.T / (s + a) + 0.2 * np.eye(s + a)
    M = block[:s, s:] if cross else np.zeros((s, a))
    return A, B, block[:s, :s], block[s:, s:], M


@pytest.mark.parametrize("seed, cross", [(0, False), (1, True), (2, True)])
def test_infinite_horizon_gain_matches_scipy(seed, cross):
    A, B, Q, R, M = dare_case(seed, cross=cross)
    P_ref = scipy.linalg.solve_discrete_are(A, B, Q, R, s=M)
    K_ref = -np.linalg.solve(R + B.T @ P_ref @ B, B.T @ P_ref @ A + M.T)
    assert np.max(np.abs(np.linalg.eigvals(A))) > 1.0 or seed == 0  # non-trivial
    with jax.enable_x64(True):
        res = jax.jit(lqr.infinite_horizon_gain)(*(jnp.asarray(m) for m in (A, B, Q, R, M)))
        assert res.K.dtype == jnp.float64
        assert int(res.iterations) < 60 and float(res.residual) < 1e-10
    assert rel_err(res.K, K_ref) < 1e-4 and rel_err(res.P, P_ref) < 1e-4
    # float32 inputs give float32 outputs, still within 1e-4.
    res32 = lqr.infinite_horizon_gain(*(jnp.asarray(m, jnp.float32) for m in (A, B, Q, R, M)))
    assert res32.K.dtype == jnp.float32
    assert rel_err(res32.K, K_ref) < 1e-4
    # The closed loop is stable.
    assert np.max(np.abs(np.linalg.eigvals(A + B @ np.asarray(res.K)))) < 1.0


def test_finite_horizon_gain_tends_to_infinite_horizon_gain():
    A, B, Q, R, M = dare_case(1)
    with jax.enable_x64(True):
        # Stage cost 1/2 (x'Qx + 2x'Mu + u'Ru): the same gains as x'Qx + 2x'Mu + u'Ru.
        problem = lqr.time_invariant(A, B, Q, R, 200, M=M)
        sol = lqr.lqr_solve(problem)
        res = lqr.infinite_horizon_gain(A, B, Q, R, M)
        assert rel_err(sol.K[0], np.asarray(res.K)) < 1e-6
