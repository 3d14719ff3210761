"""iLQR (and DDP) on a planning problem's deterministic dynamics and per-step reward.

Written for mbjax (Google's trajax, which has iLQR in JAX, is unmaintained and not installable
here; nothing is copied from it or from any other project). The LQ backward step is
`mbjax.planners.lqr.policy_from_q`.

The problem must carry `x0`, `step(x, action [A]) -> x'` and `reward(x, action, x') -> []`
(a `PlanningProblem` from `make_model_problem` or `make_env_problem`; a bare objective is refused).
The state x may be any pytree (an env `State`): its floating-point leaves are flattened into
z [S] for the derivatives, other leaves (counters, flags) are carried along unchanged. The
cost is minus the reward, l(x, u) = -reward(x, u, step(x, u)); there is no terminal cost.

One iteration (a `lax.while_loop` runs at most `iterations` of them, stopping early once the
expected and actual improvement fall below `tolerance`):

1. Linearise along the nominal trajectory, all H steps at once (`vmap` over time):
   F_t = d step / d(z, w) [S, S+A] with `jax.jacfwd`, the cost gradient [S+A] and Hessian
   [S+A, S+A] with `jax.hessian`.
2. Backward pass (a `lax.scan`): the Q-function block
   [[Q_xx, Q_xu], [Q_ux, Q_uu]] = hess l + F' P_{t+1} F   (ddp=True adds sum_i p_i hess step_i),
   with Levenberg-Marquardt regularisation of the WHOLE block, + mu I (states and actions: a
   proximal term on the whole trajectory step, not only on the actions). The pass fails if any
   regularised Q_uu is not positive definite (or a gain is not finite) and is redone with mu
   raised (x reg_factor, at least reg_min). Only the derivatives are modified, never the
   gradient, so a converged plan is a stationary point of the true objective; with mu -> 0 near
   the optimum DDP converges quadratically. (Projecting only Q_uu is a known failure, trajax
   issue #16: the block the recursion propagates is then left unregularised.)
3. Line search: the closed-loop forward pass u_t = bound(w_t + alpha k_t + K_t (z_t - z_bar_t))
   for alpha in decay^0 .. decay^(L-1), evaluated together (`vmap`); the largest alpha whose
   actual decrease is at least `armijo` x the predicted one is taken and mu is divided by
   `reg_factor` (to 0 below `reg_min`); if none is, mu is multiplied by it (at least reg_min).

Action bounds: "clamp" clips u to [-1, 1] in the forward pass (the derivatives see the clipped
nominal); "squash" optimises w with u = tanh(w) (warm starts pass through arctanh of u clipped to
+-(1 - 1e-4)); "none" leaves actions unbounded (for unconstrained problems, e.g. to compare with
LQR; mbjax envs clip actions themselves).

On a linear-quadratic problem with unconstrained optimum inside the bounds, one iteration from
any warm start gives the LQR solution (alpha = 1 is exact and mu starts at `reg_init` = 0).

Restarts (`restarts` = R > 1): iLQR is a local method, and from a cart-pole hanging at rest the
shifted warm start (zeros at first) sits where the reward's gradient nearly vanishes. R runs are
solved together (`vmap`): the warm start and R - 1 perturbed copies, mean + restart_std x colored
noise (iCEM's smooth 1/f^beta noise, `planners.noise`) clipped to [-1, 1]; the converged plan
with the best score is returned: `restart_score="objective"` scores the R plans with the
problem's `objective` (for PETS the particle return over all members, so a plan that exploits
the one member iLQR stepped through is not preferred), "plan" with the return iLQR optimised.
This is multi-start local optimisation (as in random-restart trajectory optimisation); the
extra runs cost R x the compute of one.

Protocol: `init(action_size, key, hparams=None)` -> `PlannerState` (mean [H, A] warm start, std
[H, A] unused zeros, hparams `ILQRHParams`); `plan(state, problem, obs, key)` -> (actions [H, A],
state with mean = actions, info); `shift` moves the warm start and refills with zeros. With
restarts = 1 `plan` is deterministic (key and obs unused); the key draws the restarts' noise.
`plan` vmaps over envs. The planning dtype is that of the flat
x0 and the warm start together (float64 with x64 and a float64 x0; the state keeps its dtype).
info: best_return [] (the reward sum of the returned actions), initial_return [] (of the warm
start), iterations [] int32 (backward passes), accepted [] int32 (steps taken), regularization
[] (final mu), restart [] int32 (the index of the returned run; 0 is the warm start). All but
initial_return are those of the returned run.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

from mbjax import validation
from mbjax.planners import base
from mbjax.planners.lqr import QFunction, policy_from_q, symmetrize
from mbjax.planners.noise import colored_noise

BOUNDS = ("clamp", "squash", "none")
RESTART_SCORES = ("objective", "plan")
SQUASH_LIMIT = 1.0 - 1e-4


@dataclasses.dataclass(frozen=True)
class ILQRConfig:
    """iLQR / DDP (see the module docstring).

    horizon: H (static). iterations: at most this many iLQR iterations per plan.
    line_search_steps: L step sizes alpha = line_search_decay^0 .. ^(L-1), tried together.
    bounds: "clamp", "squash" or "none". ddp: add the dynamics' second-order terms.
    reg_init: mu at the start of each plan (>= 0); reg_min: the smallest nonzero mu (> 0);
    reg_max: stop when mu exceeds it; reg_factor: mu's multiplier (> 1).
    line_search_decay: in (0, 1). armijo: accepted if actual decrease >= armijo x predicted,
    in [0, 1). tolerance: stop when the predicted or actual decrease is below
    tolerance x (1 + |cost|), >= 0.
    model_dynamics: for problems over a learned ensemble (read by PETS, not by the planner):
    "member" (default) plans on one member drawn per plan, "mean" on the members' mean
    prediction. Measured on cartpole_swingup (PETS cpu preset, 5 episodes, 3 seeds, one run per
    plan): episode-5 return 162 (134-178) with "member", 8 with "mean" (no exploration: it
    stalls); with restarts see benchmarks/results/pets_ilqr_cartpole_swingup.json.
    restarts: R iLQR runs per plan (vmapped), the warm start and R - 1 perturbed ones
    (restart_std x colored noise with exponent restart_noise_beta, both >= 0); the best by
    restart_score ("objective": the problem's objective, "plan": iLQR's own return) is returned.
    The float fields are the defaults of `state.hparams` (`ILQRHParams`), changeable without
    retracing; the others are static.
    """

    horizon: int = 25
    iterations: int = 10
    line_search_steps: int = 8
    bounds: str = "clamp"
    ddp: bool = False
    reg_init: float = 0.0
    reg_min: float = 1e-6
    reg_max: float = 1e8
    reg_factor: float = 10.0
    line_search_decay: float = 0.5
    armijo: float = 1e-4
    tolerance: float = 1e-6
    model_dynamics: str = "member"
    restarts: int = 1
    restart_std: float = 0.5
    restart_noise_beta: float = 2.0
    restart_score: str = "objective"

    def __post_init__(self) -> None:
        for name in ("horizon", "iterations", "line_search_steps", "restarts"):
            validation.field_int(self, name)
        validation.field_choice(self, "bounds", BOUNDS)
        validation.field_bool(self, "ddp")
        validation.field_float(self, "reg_init", 0.0)
        validation.field_float(self, "reg_min", 0.0, lo_open=True)
        validation.field_float(self, "reg_max", self.reg_min, lo_open=True)
        validation.field_float(self, "reg_factor", 1.0, lo_open=True)
        validation.field_float(self, "line_search_decay", 0.0, 1.0, lo_open=True, hi_open=True)
        validation.field_float(self, "armijo", 0.0, 1.0, hi_open=True)
        validation.field_float(self, "tolerance", 0.0)
        validation.field_choice(self, "model_dynamics", ("mean", "member"))
        validation.field_float(self, "restart_std", 0.0)
        validation.field_float(self, "restart_noise_beta", 0.0)
        validation.field_choice(self, "restart_score", RESTART_SCORES)

    @property
    def trajectories_per_plan(self) -> int:
        """Rollouts per plan at most: per restart, the nominal one plus L per iteration."""
        return self.restarts * (1 + self.iterations * self.line_search_steps)

    @property
    def needs_dynamics(self) -> bool:
        """iLQR uses `problem.step` / `problem.reward` (read by PETS to build a problem)."""
        return True


@struct.dataclass
class ILQRHParams:
    """iLQR's numeric hyperparameters, float32 [] leaves (see `ILQRConfig`)."""

    reg_init: jax.Array
    reg_min: jax.Array
    reg_max: jax.Array
    reg_factor: jax.Array
    line_search_decay: jax.Array
    armijo: jax.Array
    tolerance: jax.Array
    restart_std: jax.Array
    restart_noise_beta: jax.Array


class FlatState(NamedTuple):
    """The floating-point leaves of a state pytree as one vector z [S] (other leaves kept).

    ravel(x) -> z [S]; unravel(z, like) -> x with float leaves from z, the others from `like`.
    """

    size: int
    ravel: Callable[[Any], jax.Array]
    unravel: Callable[[jax.Array, Any], Any]


def flat_state(x0: Any, dtype: Any) -> FlatState:
    leaves, treedef = jax.tree_util.tree_flatten(x0)
    is_float = [jnp.issubdtype(jnp.result_type(leaf), jnp.inexact) for leaf in leaves]
    shapes = [jnp.shape(leaf) for leaf in leaves]
    size = sum(math.prod(s) for s, f in zip(shapes, is_float, strict=True) if f)

    def ravel(x: Any) -> jax.Array:
        parts = [jnp.ravel(leaf).astype(dtype)
                 for leaf, f in zip(jax.tree_util.tree_leaves(x), is_float, strict=True) if f]
        return jnp.concatenate(parts) if parts else jnp.zeros((0,), dtype)

    def unravel(z: jax.Array, like: Any) -> Any:
        out, i = [], 0
        for leaf, f, shape in zip(jax.tree_util.tree_leaves(like), is_float, shapes,
                                  strict=True):
            if f:
                n = math.prod(shape)
                out.append(z[i:i + n].reshape(shape).astype(jnp.result_type(leaf)))
                i += n
            else:
                out.append(leaf)
        return jax.tree_util.tree_unflatten(treedef, out)

    return FlatState(size, ravel, unravel)


class Trajectory(NamedTuple):
    """A rollout: xs (state pytree, leaves [H, ...]: x_0 .. x_{H-1}), zs [H, S] their flat
    float parts, ws [H, A] the plan variables (u = w, or tanh(w) for "squash"), cost []."""

    xs: Any
    zs: jax.Array
    ws: jax.Array
    cost: jax.Array


class Gains(NamedTuple):
    """K [H, A, S], k [H, A]; expected [2]: the predicted cost change is
    alpha expected[0] + alpha^2 expected[1]; pd [] bool: every regularised Q_uu was positive
    definite."""

    K: jax.Array
    k: jax.Array
    expected: jax.Array
    pd: jax.Array


class Carry(NamedTuple):
    """The iteration loop's carry: the nominal trajectory, mu [], counters [] int32, done []."""

    traj: Trajectory
    mu: jax.Array
    iterations: jax.Array
    accepted: jax.Array
    done: jax.Array


def check_problem(problem: Any) -> None:
    missing = [name for name in ("x0", "step", "reward") if not hasattr(problem, name)]
    if missing:
        raise validation.invalid(
            "problem", type(problem).__name__,
            f"a problem with x0, step and reward for iLQR (missing {missing}); build one with "
            "mbjax.rollout.make_model_problem or make_env_problem",
        )


class Solver(NamedTuple):
    """The pieces of one plan, closed over the problem, config and hparams."""

    cfg: ILQRConfig
    hp: ILQRHParams
    problem: Any
    flat: FlatState

    def to_action(self, w: jax.Array) -> jax.Array:
        return jnp.tanh(w) if self.cfg.bounds == "squash" else w

    def project(self, w: jax.Array) -> jax.Array:
        return base.clip_actions(w) if self.cfg.bounds == "clamp" else w

    def stage(self, z: jax.Array, w: jax.Array, like: Any) -> tuple[jax.Array, jax.Array]:
        """(flat next state [S], cost []) of one step from flat z [S] and w [A]."""
        x = self.flat.unravel(z, like)
        u = self.to_action(w)
        next_x = self.problem.step(x, u)
        return self.flat.ravel(next_x), -self.problem.reward(x, u, next_x)


def rollout(sv: Solver, nominal: Trajectory, gains: Gains, alpha: jax.Array) -> Trajectory:
    """Closed-loop forward pass from problem.x0: w_t = project(w_bar + alpha k + K (z - z_bar))."""

    def body(x, inp):
        w_bar, z_bar, K, k = inp
        z = sv.flat.ravel(x)
        w = sv.project(w_bar + alpha * k + K @ (z - z_bar))
        u = sv.to_action(w)
        next_x = sv.problem.step(x, u)
        return next_x, (x, z, w, sv.problem.reward(x, u, next_x))

    _, (xs, zs, ws, rewards) = jax.lax.scan(
        body, sv.problem.x0, (nominal.ws, nominal.zs, gains.K, gains.k))
    cost = -jnp.sum(rewards)
    return Trajectory(xs, zs, ws, jnp.where(jnp.isnan(cost), jnp.inf, cost))


def linearize(sv: Solver, traj: Trajectory) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Along `traj`, all steps at once: F [H, S, S+A], cost gradient [H, S+A], Hessian
    [H, S+A, S+A] with respect to y = (z, w)."""
    s = sv.flat.size

    def one(x, z, w):
        y = jnp.concatenate([z, w])
        dyn = lambda v: sv.stage(v[:s], v[s:], x)[0]  # noqa: E731
        cost = lambda v: sv.stage(v[:s], v[s:], x)[1]  # noqa: E731
        return jax.jacfwd(dyn)(y), jax.grad(cost)(y), jax.hessian(cost)(y)

    return jax.vmap(one)(traj.xs, traj.zs, traj.ws)


def backward(sv: Solver, traj: Trajectory, derivs: tuple, mu: jax.Array) -> Gains:
    """The regularised Riccati recursion (a reverse `lax.scan`); see the module docstring."""
    s = sv.flat.size
    F, g, hess = derivs
    dtype = traj.zs.dtype

    def step(carry, inp):
        P, p = carry
        F_t, g_t, h_t, x, z, w = inp
        block = h_t + F_t.T @ P @ F_t
        if sv.cfg.ddp:  # sum_i p_i d2 step_i / dy2
            y = jnp.concatenate([z, w])
            block = block + jax.hessian(lambda v: p @ sv.stage(v[:s], v[s:], x)[0])(y)
        block = symmetrize(block) + mu * jnp.eye(block.shape[0], dtype=dtype)
        grad = g_t + F_t.T @ p
        qf = QFunction(xx=block[:s, :s], ux=block[s:, :s], uu=block[s:, s:], x=grad[:s],
                       u=grad[s:])
        K, k, P, p, expected = policy_from_q(qf)
        return (P, p), (K, k, expected, jnp.linalg.eigvalsh(qf.uu)[0] > 0)

    init = (jnp.zeros((s, s), dtype), jnp.zeros((s,), dtype))
    _, (K, k, expected, pd) = jax.lax.scan(
        step, init, (F, g, hess, traj.xs, traj.zs, traj.ws), reverse=True)
    return Gains(K, k, expected.sum(axis=0), jnp.all(pd))


def finite_gains(gains: Gains) -> jax.Array:
    """Every Q_uu was positive definite and the gains are finite."""
    return gains.pd & jnp.all(jnp.isfinite(gains.K)) & jnp.all(jnp.isfinite(gains.k)) & (
        jnp.all(jnp.isfinite(gains.expected)))


def regularized_backward(sv: Solver, traj: Trajectory, mu: jax.Array) -> tuple[Gains, jax.Array]:
    """`backward` at mu, retried with a larger mu while some Q_uu is not positive definite or
    the gains are not finite (up to reg_max). Returns (gains, the mu used)."""
    derivs = linearize(sv, traj)
    hp = sv.hp

    def body(c):
        _, mu = c
        mu = jnp.maximum(mu * hp.reg_factor, hp.reg_min)
        return backward(sv, traj, derivs, mu), mu

    def cond(c):
        return ~finite_gains(c[0]) & (c[1] <= hp.reg_max)

    return jax.lax.while_loop(cond, body, (backward(sv, traj, derivs, mu), mu))


def line_search(sv: Solver, traj: Trajectory, gains: Gains) -> tuple[Trajectory, jax.Array,
                                                                     jax.Array]:
    """All L step sizes at once: (the trajectory of the largest accepted alpha, or `traj`;
    accepted [] bool; predicted decrease at alpha = 1 [])."""
    hp = sv.hp
    alphas = hp.line_search_decay ** jnp.arange(sv.cfg.line_search_steps, dtype=traj.zs.dtype)
    trials = jax.vmap(lambda a: rollout(sv, traj, gains, a))(alphas)
    predicted = -(alphas * gains.expected[0] + alphas**2 * gains.expected[1])
    decrease = traj.cost - trials.cost
    ok = (decrease > 0) & (decrease >= hp.armijo * predicted) & finite_gains(gains)
    first = jnp.argmax(ok)
    accepted = jnp.any(ok)
    best = jax.tree_util.tree_map(lambda t: t[first], trials)
    new = jax.tree_util.tree_map(lambda b, o: jnp.where(accepted, b, o), best, traj)
    return new, accepted, -(gains.expected[0] + gains.expected[1])


def iterate(sv: Solver, c: Carry) -> Carry:
    """One iLQR iteration: linearise, regularised backward pass, line search, update mu."""
    hp = sv.hp
    gains, mu = regularized_backward(sv, c.traj, c.mu)
    traj, accepted, predicted = line_search(sv, c.traj, gains)
    scale = hp.tolerance * (1.0 + jnp.abs(c.traj.cost))
    actual = c.traj.cost - traj.cost
    mu_down = jnp.where(mu / hp.reg_factor < hp.reg_min, 0.0, mu / hp.reg_factor)
    mu = jnp.where(accepted, mu_down, jnp.maximum(mu * hp.reg_factor, hp.reg_min))
    converged = (finite_gains(gains) & (predicted < scale)) | (accepted & (actual < scale))
    return Carry(traj, mu.astype(c.mu.dtype), c.iterations + 1,
                 c.accepted + accepted.astype(jnp.int32), converged | (mu > hp.reg_max))


def solve(sv: Solver, actions: jax.Array) -> tuple[Trajectory, Carry]:
    """iLQR from the initial actions [H, A]: (the initial trajectory, the final carry)."""
    ws = actions
    if sv.cfg.bounds == "squash":
        ws = jnp.arctanh(jnp.clip(ws, -SQUASH_LIMIT, SQUASH_LIMIT))
    h, a = ws.shape
    dtype = ws.dtype
    zero = Gains(jnp.zeros((h, a, sv.flat.size), dtype), jnp.zeros((h, a), dtype),
                 jnp.zeros((2,), dtype), jnp.ones((), bool))
    nominal = Trajectory(None, jnp.zeros((h, sv.flat.size), dtype), ws, None)
    start = rollout(sv, nominal, zero, jnp.zeros((), dtype))
    carry = Carry(start, jnp.asarray(sv.hp.reg_init, dtype), jnp.zeros((), jnp.int32),
                  jnp.zeros((), jnp.int32), jnp.zeros((), bool))
    final = jax.lax.while_loop(
        lambda c: (c.iterations < sv.cfg.iterations) & ~c.done,
        lambda c: iterate(sv, c), carry)
    return start, final


def initial_sequences(cfg: ILQRConfig, hp: ILQRHParams, mean: jax.Array,
                      key: jax.Array) -> jax.Array:
    """The R = `restarts` initial action sequences [R, H, A]: the warm start `mean` [H, A], then
    R - 1 perturbations mean + restart_std * colored noise (power ~ 1/f^restart_noise_beta
    along H, iCEM's smooth exploration noise), clipped to [-1, 1]."""
    if cfg.restarts == 1:
        return mean[None]
    noise = colored_noise(key, hp.restart_noise_beta, (cfg.restarts - 1,) + mean.shape)
    others = base.clip_actions(mean + hp.restart_std * noise.astype(mean.dtype))
    return jnp.concatenate([mean[None], others])


def make_ilqr(config: ILQRConfig) -> base.Planner:
    """iLQR planner; state is a `PlannerState` (mean [H, A], std unused, hparams `ILQRHParams`)."""
    cfg = config

    def plan(state: base.PlannerState, problem: Any, obs: Any,
             key: jax.Array) -> tuple[jax.Array, base.PlannerState, dict]:
        """Returns (actions [H, A], state with mean = actions, info)."""
        del obs
        check_problem(problem)
        mean = base.warm_mean(state, cfg.horizon)
        z_like = flat_state(problem.x0, mean.dtype).ravel(problem.x0)
        dtype = jnp.result_type(mean.dtype, z_like.dtype)
        sv = Solver(cfg, state.hparams, problem, flat_state(problem.x0, dtype))
        starts = initial_sequences(cfg, state.hparams, mean, key)  # [R, H, A]
        start, final = jax.vmap(lambda u: solve(sv, u.astype(dtype)))(starts)
        actions = jax.vmap(lambda w: sv.project(sv.to_action(w)))(final.traj.ws)  # [R, H, A]
        if cfg.restarts == 1:
            best = jnp.zeros((), jnp.int32)
        elif cfg.restart_score == "objective":
            best = jnp.argmax(base.objective_of(problem)(actions.astype(state.mean.dtype)))
        else:
            best = jnp.argmin(final.traj.cost)
        pick = lambda t: t[best]  # noqa: E731
        info = {"best_return": -pick(final.traj.cost), "initial_return": -start.cost[0],
                "iterations": pick(final.iterations), "accepted": pick(final.accepted),
                "regularization": pick(final.mu), "restart": best.astype(jnp.int32)}
        return pick(actions), state.replace(mean=pick(actions).astype(state.mean.dtype)), info

    hparams = ILQRHParams(
        reg_init=cfg.reg_init, reg_min=cfg.reg_min, reg_max=cfg.reg_max,
        reg_factor=cfg.reg_factor, line_search_decay=cfg.line_search_decay, armijo=cfg.armijo,
        tolerance=cfg.tolerance, restart_std=cfg.restart_std,
        restart_noise_beta=cfg.restart_noise_beta,
    )
    init = base.make_init(cfg.horizon, 0.0, hparams)
    return base.Planner(init=init, plan=plan, shift=base.make_state_shift(0.0))
