"""Linear-Gaussian controllers and their KL-bounded LQR update (guided policy search).

Levine & Abbeel 2014 ("Learning Neural Network Policies with Guided Policy Search under Unknown
Dynamics", section 3.1) update a time-varying controller p(u_t | x_t) = N(K_t x_t + k_t, S_t)
by minimising the expected cost under the fitted dynamics subject to a bound on the KL
divergence to the previous controller p_bar:

    min_p E_p[sum_t c(x_t, u_t)]   s.t.   (1/T) sum_t E_{p(x_t)}[KL(p(u_t|x_t) || p_bar(u_t|x_t))]
                                          <= epsilon

The Lagrangian's minimiser for a fixed dual variable eta is the maximum-entropy LQR solution of
the augmented cost c(x, u) / eta - log p_bar(u | x): u = K x + k from the Riccati recursion
(`mbjax.planners.lqr.lqr_solve`, reused as is) with covariance S_t = Q_uu,t^-1. `solve_eta`
finds the eta that meets the bound (bisection on log eta inside a `lax.while_loop`; the KL
falls as eta grows). Here epsilon is the bound on the mean per-step KL (the paper's reference
code bounds the sum by T x kl_step: the same thing).

`adjust_step` is the paper's step-size rule: with the improvement of the expected cost that the
fitted model predicted for the new controller and the improvement actually measured under the
next fit, epsilon is multiplied by predicted / (2 (predicted - actual)) (clipped to
[0.1, 5] and the multiplier to [min, max]), the optimum of a quadratic model of improvement in
the KL step.

Costs are quadratic in y = [x; u] (`QuadraticCost`, absolute coordinates) from a second-order
expansion (`expand_cost`: `jax.grad` / `jax.hessian`) of the stage cost around the predicted
mean trajectory. Shapes: S states, A actions, T steps, d = S + A.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from mbjax.agents.gps.dynamics import LinearGaussianDynamics
from mbjax.planners.lqr import LQRProblem, lqr_solve, symmetrize


class Controller(NamedTuple):
    """u_t ~ N(K_t x_t + k_t, cov_t): K [T, A, S], k [T, A], cov [T, A, A]."""

    K: jax.Array
    k: jax.Array
    cov: jax.Array


class TrajectoryDistribution(NamedTuple):
    """Gaussian marginals of y_t = [x_t; u_t] under a controller and linear-Gaussian dynamics:
    mean [T, d], cov [T, d, d]; final_mean [S], final_cov [S, S] of x_T."""

    mean: jax.Array
    cov: jax.Array
    final_mean: jax.Array
    final_cov: jax.Array


class QuadraticCost(NamedTuple):
    """c_t(y) = 1/2 y' C_t y + c_t' y + c0_t for y = [x_t; u_t]: C [T, d, d], c [T, d],
    c0 [T]; the terminal cost of x_T: C_final [S, S], c_final [S], c0_final []."""

    C: jax.Array
    c: jax.Array
    c0: jax.Array
    C_final: jax.Array
    c_final: jax.Array
    c0_final: jax.Array


class EtaSearch(NamedTuple):
    """The result of `solve_eta`: controller, eta [], kl [] (mean per-step KL to the previous
    controller), iterations [] int32, ok [] bool (a positive-definite solution was found)."""

    controller: Controller
    eta: jax.Array
    kl: jax.Array
    iterations: jax.Array
    ok: jax.Array


def initial_controller(horizon: int, state_size: int, action_size: int,
                       action_std: float) -> Controller:
    """Zero gains and feedforward, isotropic noise of standard deviation `action_std`."""
    eye = jnp.eye(action_size, dtype=jnp.float32)
    return Controller(jnp.zeros((horizon, action_size, state_size), jnp.float32),
                      jnp.zeros((horizon, action_size), jnp.float32),
                      jnp.broadcast_to(action_std**2 * eye, (horizon, action_size, action_size)))


def forward(dyn: LinearGaussianDynamics, ctrl: Controller) -> TrajectoryDistribution:
    """The state-action marginals of `ctrl` under `dyn` (a `lax.scan` over t)."""

    def step(carry, inp):
        mu, sigma = carry
        F, f, cov, K, k, S = inp
        mu_u = K @ mu + k
        sigma_xu = sigma @ K.T
        joint_mean = jnp.concatenate([mu, mu_u])
        joint_cov = jnp.block([[sigma, sigma_xu], [sigma_xu.T, K @ sigma_xu + S]])
        joint_cov = symmetrize(joint_cov)
        next_cov = symmetrize(F @ joint_cov @ F.T + cov)
        return (F @ joint_mean + f, next_cov), (joint_mean, joint_cov)

    (final_mean, final_cov), (mean, cov) = jax.lax.scan(
        step, (dyn.x0_mean, dyn.x0_cov), (dyn.F, dyn.f, dyn.cov, ctrl.K, ctrl.k, ctrl.cov))
    return TrajectoryDistribution(mean, cov, final_mean, final_cov)


def kl_per_step(new: Controller, old: Controller, traj: TrajectoryDistribution) -> jax.Array:
    """E_{x ~ N(mu_t, Sigma_t)}[KL(new(u|x) || old(u|x))] [T], the state marginals those of
    `traj` (closed form: Gaussian KL plus the expected squared mean difference)."""
    s = new.K.shape[-1]

    def one(K, k, S, K0, k0, S0, mean, cov):
        prec0 = jnp.linalg.inv(S0)
        dK, dk = K - K0, k - k0
        mu, sigma = mean[:s], cov[:s, :s]
        dm = dK @ mu + dk
        quad = dm @ prec0 @ dm + jnp.trace(dK.T @ prec0 @ dK @ sigma)
        logdet = jnp.linalg.slogdet(S0)[1] - jnp.linalg.slogdet(S)[1]
        return 0.5 * (jnp.trace(prec0 @ S) + quad + logdet - k.shape[0])

    return jax.vmap(one)(new.K, new.k, new.cov, old.K, old.k, old.cov, traj.mean, traj.cov)


def expected_cost(cost: QuadraticCost, traj: TrajectoryDistribution) -> jax.Array:
    """E[sum_t c_t(y_t) + c_final(x_T)] [] under the Gaussian marginals of `traj`."""

    def quad(C, c, c0, mean, cov):
        return 0.5 * jnp.trace(C @ cov) + 0.5 * mean @ C @ mean + c @ mean + c0

    stages = jax.vmap(quad)(cost.C, cost.c, cost.c0, traj.mean, traj.cov)
    return jnp.sum(stages) + quad(cost.C_final, cost.c_final, cost.c0_final, traj.final_mean,
                                  traj.final_cov)


def expand_cost(stage_cost: Callable[[jax.Array, int], jax.Array],
                final_cost: Callable[[jax.Array], jax.Array],
                traj: TrajectoryDistribution) -> QuadraticCost:
    """The second-order expansion of stage_cost(y [d], t) around traj.mean[t] (vmapped over t)
    and of final_cost(x [S]) around traj.final_mean, rewritten in absolute coordinates."""

    def absolute(fn, point):
        value, g, H = fn(point), jax.grad(fn)(point), jax.hessian(fn)(point)
        H = symmetrize(H)
        return H, g - H @ point, value - g @ point + 0.5 * point @ H @ point

    times = jnp.arange(traj.mean.shape[0])
    C, c, c0 = jax.vmap(lambda y, t: absolute(lambda v: stage_cost(v, t), y))(traj.mean, times)
    C_final, c_final, c0_final = absolute(final_cost, traj.final_mean)
    return QuadraticCost(C, c, c0, C_final, c_final, c0_final)


def augmented_problem(dyn: LinearGaussianDynamics, cost: QuadraticCost, old: Controller,
                      eta: jax.Array) -> LQRProblem:
    """The LQ problem of cost / eta - log old(u | x) (dropping constants) under dyn's means."""
    s = dyn.x0_mean.shape[0]
    prec = jnp.linalg.inv(old.cov)  # [T, A, A]
    kt_prec = jnp.einsum("tas,tab->tsb", old.K, prec)  # K' P [T, S, A]
    C = cost.C / eta
    c = cost.c / eta
    return LQRProblem(
        A=dyn.F[:, :, :s], B=dyn.F[:, :, s:], c=dyn.f,
        Q=jnp.concatenate([C[:, :s, :s] + jnp.einsum("tsa,tar->tsr", kt_prec, old.K),
                           cost.C_final[None] / eta]),
        q=jnp.concatenate([c[:, :s] + jnp.einsum("tsa,ta->ts", kt_prec, old.k),
                           cost.c_final[None] / eta]),
        R=C[:, s:, s:] + prec,
        r=c[:, s:] - jnp.einsum("tab,tb->ta", prec, old.k),
        M=C[:, :s, s:] - kt_prec,
    )


def lqr_controller(problem: LQRProblem) -> tuple[Controller, jax.Array]:
    """The maximum-entropy LQR controller of `problem` (covariance Q_uu^-1, Q_uu = R_t +
    B_t' P_{t+1} B_t from the Riccati value) and whether every Q_uu is positive definite and
    every number finite."""
    sol = lqr_solve(problem)
    quu = symmetrize(problem.R + jnp.einsum("tsa,tsz,tzb->tab", problem.B, sol.P[1:],
                                            problem.B))
    pd = jnp.all(jnp.linalg.eigvalsh(quu)[:, 0] > 0)
    cov = symmetrize(jnp.linalg.inv(quu))
    ok = pd & jnp.all(jnp.isfinite(sol.K)) & jnp.all(jnp.isfinite(sol.k)) & jnp.all(
        jnp.isfinite(cov))
    return Controller(sol.K, sol.k, cov), ok


def kl_at(dyn: LinearGaussianDynamics, cost: QuadraticCost, old: Controller,
          eta: jax.Array) -> tuple[Controller, jax.Array, jax.Array]:
    """(controller, mean per-step KL to `old` under its own trajectory distribution, ok) at
    eta; a failed solve reports KL = +inf (so the search raises eta)."""
    ctrl, ok = lqr_controller(augmented_problem(dyn, cost, old, eta))
    kl = jnp.mean(kl_per_step(ctrl, old, forward(dyn, ctrl)))
    ok = ok & jnp.isfinite(kl)
    return ctrl, jnp.where(ok, kl, jnp.inf), ok


class _Bracket(NamedTuple):
    lo: jax.Array  # log eta with KL above epsilon (or the lower end)
    hi: jax.Array  # log eta with KL at most epsilon (or the upper end)
    result: EtaSearch
    done: jax.Array


def solve_eta(dyn: LinearGaussianDynamics, cost: QuadraticCost, old: Controller,
              epsilon: jax.Array, eta_min: float, eta_max: float, tolerance: float,
              max_iterations: int) -> EtaSearch:
    """The controller whose KL to `old` is epsilon (within `tolerance` x epsilon), by bisection
    on log eta in [eta_min, eta_max] (a `lax.while_loop` of at most `max_iterations` solves).

    If even eta_min keeps the KL below epsilon the bound is inactive and eta_min's controller is
    returned; if the search ends without meeting the tolerance, the feasible end of the bracket
    (KL <= epsilon) is returned. `ok` is False if no positive-definite solution was found.
    """
    f32 = lambda v: jnp.asarray(v, jnp.float32)  # noqa: E731
    log_lo, log_hi = jnp.log(f32(eta_min)), jnp.log(f32(eta_max))

    def evaluate(log_eta, i):
        ctrl, kl, ok = kl_at(dyn, cost, old, jnp.exp(log_eta))
        return EtaSearch(ctrl, jnp.exp(log_eta), kl, i, ok)

    at_min = evaluate(log_lo, jnp.int32(1))
    at_max = evaluate(log_hi, jnp.int32(2))
    inactive = at_min.ok & (at_min.kl <= epsilon)

    def body(b: _Bracket) -> _Bracket:
        mid = 0.5 * (b.lo + b.hi)
        r = evaluate(mid, b.result.iterations + 1)
        hit = r.ok & (jnp.abs(r.kl - epsilon) <= tolerance * epsilon)
        above = r.kl > epsilon
        # Keep the feasible end's solution in `result` unless this one is within tolerance.
        keep = jax.tree_util.tree_map(lambda new, old_: jnp.where(hit | ~above, new, old_),
                                      r, b.result._replace(iterations=r.iterations))
        return _Bracket(jnp.where(above, mid, b.lo), jnp.where(above, b.hi, mid), keep, hit)

    def cond(b: _Bracket) -> jax.Array:
        return ~b.done & (b.result.iterations < max_iterations)

    start = _Bracket(log_lo, log_hi, at_max, inactive)
    searched = jax.lax.while_loop(cond, body, start).result
    return jax.tree_util.tree_map(lambda a, b: jnp.where(inactive, a, b), at_min, searched)


def adjust_step(step_mult: jax.Array, predicted: jax.Array, actual: jax.Array,
                min_mult: float, max_mult: float) -> jax.Array:
    """Levine & Abbeel's step-size rule: step_mult x clip(predicted / (2 max(1e-4, predicted -
    actual)), 0.1, 5), clipped to [min_mult, max_mult]. predicted / actual: the decrease of the
    expected cost the last update predicted / achieved."""
    factor = predicted / (2.0 * jnp.maximum(1e-4, predicted - actual))
    factor = jnp.clip(factor, 0.1, 5.0)
    return jnp.clip(step_mult * factor, min_mult, max_mult)
