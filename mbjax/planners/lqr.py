"""Linear-quadratic regulators: finite-horizon time-varying LQR and the infinite-horizon gain.

Written for mbjax (Google's trajax, which has LQR/iLQR in JAX, is unmaintained and not
installable here; nothing is copied from it or from any other project).

Costs are minimised (a reward is a negative cost). The finite-horizon problem `LQRProblem`:

    x_{t+1} = A_t x_t + B_t u_t + c_t                                  t = 0 .. H-1
    cost    = sum_t [ 1/2 x_t' Q_t x_t + x_t' M_t u_t + 1/2 u_t' R_t u_t + q_t' x_t + r_t' u_t ]
              + 1/2 x_H' Q_H x_H + q_H' x_H

`lqr_solve` runs the backward Riccati recursion as one `lax.scan` and returns the optimal
time-varying affine policy u_t = K_t x_t + k_t (feedback gains K [H, A, S], feedforward
k [H, A]) and the value function V_t(x) = 1/2 x' P_t x + p_t' x + const; `lqr_rollout` applies it
from x0. The same Q-function step (`q_function`, `policy_from_q`) is the backward pass of iLQR
(`mbjax.planners.ilqr`), which builds the Q-function blocks from derivatives instead.

`infinite_horizon_gain(A, B, Q, R, M)` solves the discrete algebraic Riccati equation
(the stabilising P of x' Q x + 2 x' M u + u' R u, scipy's `solve_discrete_are(A, B, Q, R, s=M)`
convention) by the structure-preserving doubling algorithm (quadratic convergence) and returns
K [A, S] with u = K x (the minus sign included) and P [S, S].

Shapes: S states, A actions, H horizon; float32 or float64 (whatever the inputs are).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from mbjax import validation


class LQRProblem(NamedTuple):
    """A finite-horizon time-varying LQ problem (see the module docstring).

    A [H, S, S], B [H, S, A], c [H, S]; Q [H+1, S, S] (Q[H]: terminal), q [H+1, S];
    R [H, A, A], r [H, A], M [H, S, A].
    """

    A: jax.Array
    B: jax.Array
    c: jax.Array
    Q: jax.Array
    q: jax.Array
    R: jax.Array
    r: jax.Array
    M: jax.Array


class QFunction(NamedTuple):
    """Quadratic model of a Q-function around zero (or a nominal point), one time step:
    Q(x, u) = 1/2 [x; u]' [[xx, ux'], [ux, uu]] [x; u] + x_' x + u_' u + const.

    xx [S, S], ux [A, S], uu [A, A], x [S], u [A].
    """

    xx: jax.Array
    ux: jax.Array
    uu: jax.Array
    x: jax.Array
    u: jax.Array


class LQRSolution(NamedTuple):
    """K [H, A, S], k [H, A]: u_t = K_t x_t + k_t. P [H+1, S, S], p [H+1, S]: the value
    V_t(x) = 1/2 x' P_t x + p_t' x + const. expected [H, 2]: per step (k' Q_u, 1/2 k' Q_uu k),
    the first- and second-order terms of the cost change of a step of size alpha (iLQR's line
    search: dJ(alpha) = alpha sum[:, 0] + alpha^2 sum[:, 1])."""

    K: jax.Array
    k: jax.Array
    P: jax.Array
    p: jax.Array
    expected: jax.Array


def symmetrize(m: jax.Array) -> jax.Array:
    return 0.5 * (m + jnp.swapaxes(m, -1, -2))


def time_invariant(
    A: jax.Array, B: jax.Array, Q: jax.Array, R: jax.Array, horizon: int,
    M: jax.Array | None = None, Q_final: jax.Array | None = None,
) -> LQRProblem:
    """An `LQRProblem` with the same A [S, S], B [S, A], Q [S, S], R [A, A] (and M [S, A],
    default 0) at every step, terminal cost Q_final (default Q), no linear terms or offsets."""
    validation.check_int("time_invariant: horizon", horizon)
    A, B, Q, R = (jnp.asarray(m) for m in (A, B, Q, R))
    s, a = B.shape
    M = jnp.zeros((s, a), B.dtype) if M is None else jnp.asarray(M)
    Q_final = Q if Q_final is None else jnp.asarray(Q_final)

    def tile(m: jax.Array, n: int) -> jax.Array:
        return jnp.broadcast_to(m, (n,) + m.shape)

    return LQRProblem(
        A=tile(A, horizon), B=tile(B, horizon), c=jnp.zeros((horizon, s), A.dtype),
        Q=jnp.concatenate([tile(Q, horizon), Q_final[None]]),
        q=jnp.zeros((horizon + 1, s), Q.dtype),
        R=tile(R, horizon), r=jnp.zeros((horizon, a), R.dtype), M=tile(M, horizon),
    )


def q_function(P: jax.Array, p: jax.Array, A: jax.Array, B: jax.Array, c: jax.Array,
               Q: jax.Array, q: jax.Array, R: jax.Array, r: jax.Array, M: jax.Array) -> QFunction:
    """The Q-function of one LQ step given the next value (P [S, S], p [S]): stage cost plus
    V_{t+1}(A x + B u + c)."""
    pc = p + P @ c
    return QFunction(
        xx=Q + A.T @ P @ A, ux=M.T + B.T @ P @ A, uu=R + B.T @ P @ B,
        x=q + A.T @ pc, u=r + B.T @ pc,
    )


def policy_from_q(qf: QFunction) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array, jax.Array]:
    """Minimise a Q-function over u: (K [A, S], k [A], P [S, S], p [S], expected [2]).

    u* = K x + k with K = -Q_uu^-1 Q_ux, k = -Q_uu^-1 Q_u; the value left is
    1/2 x' P x + p' x with P = Q_xx + Q_ux' K, p = Q_x + Q_ux' k. Q_uu must be positive
    definite (a singular one gives non-finite gains, which callers detect).
    """
    uu = symmetrize(qf.uu)
    sol = jnp.linalg.solve(uu, jnp.concatenate([qf.ux, qf.u[:, None]], axis=1))
    K, k = -sol[:, :-1], -sol[:, -1]
    P = symmetrize(qf.xx + qf.ux.T @ K)
    p = qf.x + qf.ux.T @ k
    expected = jnp.stack([k @ qf.u, 0.5 * k @ uu @ k])
    return K, k, P, p, expected


def lqr_solve(problem: LQRProblem) -> LQRSolution:
    """The backward Riccati recursion of `problem` as one `lax.scan` over t = H-1 .. 0."""

    def backward(carry, step):
        P, p = carry
        K, k, P, p, expected = policy_from_q(q_function(P, p, *step))
        return (P, p), (K, k, P, p, expected)

    steps = (problem.A, problem.B, problem.c, problem.Q[:-1], problem.q[:-1], problem.R,
             problem.r, problem.M)
    final = (problem.Q[-1], problem.q[-1])
    _, (K, k, P, p, expected) = jax.lax.scan(backward, final, steps, reverse=True)
    P = jnp.concatenate([P, final[0][None]])
    p = jnp.concatenate([p, final[1][None]])
    return LQRSolution(K=K, k=k, P=P, p=p, expected=expected)


def lqr_rollout(problem: LQRProblem, solution: LQRSolution,
                x0: jax.Array) -> tuple[jax.Array, jax.Array]:
    """States [H+1, S] and actions [H, A] of the policy u_t = K_t x_t + k_t from x0 [S]."""

    def forward(x, step):
        A, B, c, K, k = step
        u = K @ x + k
        return A @ x + B @ u + c, (x, u)

    steps = (problem.A, problem.B, problem.c, solution.K, solution.k)
    x_final, (xs, us) = jax.lax.scan(forward, x0, steps)
    return jnp.concatenate([xs, x_final[None]]), us


def lqr_cost(problem: LQRProblem, xs: jax.Array, us: jax.Array) -> jax.Array:
    """The total cost [] of states [H+1, S] and actions [H, A] under `problem`."""
    x, xh = xs[:-1], xs[-1]
    stage = (0.5 * jnp.einsum("ts,tsz,tz->", x, problem.Q[:-1], x)
             + jnp.einsum("ts,tsa,ta->", x, problem.M, us)
             + 0.5 * jnp.einsum("ta,tab,tb->", us, problem.R, us)
             + jnp.sum(problem.q[:-1] * x) + jnp.sum(problem.r * us))
    return stage + 0.5 * xh @ problem.Q[-1] @ xh + problem.q[-1] @ xh


class DAREResult(NamedTuple):
    """K [A, S] (u = K x), P [S, S] the stabilising DARE solution, iterations [] doublings,
    residual [] max |DARE(P)| / max(1, max |P|)."""

    K: jax.Array
    P: jax.Array
    iterations: jax.Array
    residual: jax.Array


def dare_residual(A, B, Q, R, M, P) -> jax.Array:
    """A'PA - P - (A'PB + M)(R + B'PB)^-1 (B'PA + M') + Q [S, S]."""
    cross = A.T @ P @ B + M
    return A.T @ P @ A - P - cross @ jnp.linalg.solve(R + B.T @ P @ B, cross.T) + Q


def infinite_horizon_gain(A: jax.Array, B: jax.Array, Q: jax.Array, R: jax.Array,
                          M: jax.Array | None = None, max_iterations: int = 60,
                          tol: float | None = None) -> DAREResult:
    """The infinite-horizon LQR gain for the cost sum x'Qx + 2x'Mu + u'Ru (M [S, A], default 0).

    A [S, S], B [S, A], Q [S, S] (PSD), R [A, A] (PD), (A, B) stabilisable. The structure-
    preserving doubling algorithm (a `lax.while_loop`, at most `max_iterations` doublings, each
    squares the convergence factor) gives the stabilising P; K = -(R + B'PB)^-1 (B'PA + M').
    tol: relative change of P at which to stop (default: 100 x machine epsilon of the dtype).
    """
    A, B, Q, R = (jnp.asarray(m) for m in (A, B, Q, R))
    dtype = jnp.result_type(A, B, Q, R)
    A, B, Q, R = (m.astype(dtype) for m in (A, B, Q, R))
    M = jnp.zeros(B.shape, dtype) if M is None else jnp.asarray(M, dtype)
    tol = 100.0 * jnp.finfo(dtype).eps if tol is None else tol
    eye = jnp.eye(A.shape[0], dtype=dtype)
    # Remove the cross term: u = v - R^-1 M' x turns it into (A - B R^-1 M', Q - M R^-1 M').
    r_inv_mt = jnp.linalg.solve(R, M.T)
    a0 = A - B @ r_inv_mt
    h0 = symmetrize(Q - M @ r_inv_mt)
    g0 = symmetrize(B @ jnp.linalg.solve(R, B.T))

    def body(carry):
        a, g, h, _, i = carry
        w = eye + g @ h
        w_a = jnp.linalg.solve(w, a)
        w_g = jnp.linalg.solve(w, g)
        h_new = symmetrize(h + a.T @ h @ w_a)
        change = jnp.max(jnp.abs(h_new - h)) / jnp.maximum(1.0, jnp.max(jnp.abs(h_new)))
        return a @ w_a, symmetrize(g + a @ w_g @ a.T), h_new, change, i + 1

    def cond(carry):
        return (carry[3] > tol) & (carry[4] < max_iterations)

    init = (a0, g0, h0, jnp.asarray(jnp.inf, dtype), jnp.zeros((), jnp.int32))
    _, _, P, _, iterations = jax.lax.while_loop(cond, body, init)
    K = -jnp.linalg.solve(R + B.T @ P @ B, B.T @ P @ A + M.T)
    residual = jnp.max(jnp.abs(dare_residual(A, B, Q, R, M, P))) / jnp.maximum(
        1.0, jnp.max(jnp.abs(P)))
    return DAREResult(K=K, P=P, iterations=iterations, residual=residual)
