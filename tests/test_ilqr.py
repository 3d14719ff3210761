"""Tests for mbjax.planners.ilqr: one iteration on a linear-quadratic problem is the LQR solution,
the result on nonlinear problems is a stationary point (finite differences, float64), MPC with the
true pendulum_swingup dynamics against CEM, bounds, pytree states, vmap, hparams, bad inputs.

float64 runs inside `jax.enable_x64(True)` (a context manager), so x64 does not leak.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mbjax import planners as P
from mbjax.planners import base, lqr


class Problem(NamedTuple):
    """A stand-in for mbjax.rollout.PlanningProblem (iLQR reads x0, step and reward)."""

    objective: Callable[[jax.Array], jax.Array]
    x0: Any
    step: Callable[[Any, jax.Array], Any]
    reward: Callable[[Any, jax.Array, Any], jax.Array]


def total_return(problem: Problem, actions: jax.Array) -> jax.Array:
    """Sum of rewards of actions [H, A] from problem.x0 (a scan)."""

    def body(x, u):
        nx = problem.step(x, u)
        return nx, problem.reward(x, u, nx)

    return jnp.sum(jax.lax.scan(body, problem.x0, actions)[1])


def make_problem(x0: Any, step: Callable, reward: Callable) -> Problem:
    p = Problem(None, x0, step, reward)
    return p._replace(objective=jax.vmap(lambda a: total_return(p, a)))


def lq_system(seed: int, s: int = 3, a: int = 2, scale: float = 1.0):
    """A random LQ system (numpy float64): A [S, S], B [S, A], Q, R, M, x0 [S]; the reward is on
    the state reached: -(1/2 x'Qx + x'Mu + 1/2 u'Ru) with x the NEXT state."""
    rng = np.random.default_rng(seed)
    A = np.eye(s) + 0.3 * rng.normal(size=(s, s))
    B = 0.5 * rng.normal(size=(s, a))
    L = rng.normal(size=(s + a, s + a))
    block = L @ L.T / (s + a) + 0.3 * np.eye(s + a)
    x0 = scale * rng.normal(size=s)
    return A, B, block[:s, :s], block[s:, s:], 0.2 * block[:s, s:], x0


def lq_problem(A, B, Q, R, M, x0) -> Problem:
    A, B, Q, R, M, x0 = (jnp.asarray(m) for m in (A, B, Q, R, M, x0))

    def reward(x, u, nx):
        return -(0.5 * nx @ Q @ nx + nx @ M @ u + 0.5 * u @ R @ u)

    return make_problem(x0, lambda x, u: A @ x + B @ u, reward)


def lq_reference(A, B, Q, R, M, x0, horizon):
    """The same problem as an LQRProblem: the cost of u_t sits on x_{t+1}, so in LQR form the
    cross term of step t is M' (A x_t + B u_t) u ... expanded into Q_t, M_t, R_t explicitly."""
    # 1/2 x'Qx + x'Mu + 1/2 u'Ru at x = A x_t + B u_t, as a quadratic in (x_t, u_t):
    Qt = A.T @ Q @ A
    Mt = A.T @ Q @ B + A.T @ M
    Rt = B.T @ Q @ B + B.T @ M + M.T @ B + R
    problem = lqr.time_invariant(A, B, Qt, Rt, horizon, M=Mt, Q_final=np.zeros_like(Q))
    return lqr.lqr_rollout(problem, lqr.lqr_solve(problem), jnp.asarray(x0))


def plan_once(planner, problem, mean=None, action_size=2, state=None):
    state = planner.init(action_size, jax.random.PRNGKey(0)) if state is None else state
    if mean is not None:
        state = state.replace(mean=jnp.asarray(mean))
    return jax.jit(lambda s: planner.plan(s, problem, None, jax.random.PRNGKey(1)))(state)


@pytest.mark.parametrize("seed, ddp, bounds", [(0, False, "none"), (1, True, "none"),
                                               (2, False, "clamp")])
def test_one_iteration_on_lq_is_the_lqr_solution(seed, ddp, bounds):
    """iterations=1 from a random warm start: the full step (alpha = 1) is the LQR solution."""
    H = 8
    A, B, Q, R, M, x0 = lq_system(seed, scale=0.3 if bounds == "clamp" else 1.0)
    warm = np.random.default_rng(seed).uniform(-0.5, 0.5, (H, 2))
    with jax.enable_x64(True):
        _, us = lq_reference(A, B, Q, R, M, x0, H)
        planner = P.make_planner("ilqr", horizon=H, iterations=1, ddp=ddp, bounds=bounds)
        actions, state, info = plan_once(planner, lq_problem(A, B, Q, R, M, x0), warm)
        assert actions.dtype == jnp.float64 and actions.shape == (H, 2)
        actions, us, mean = np.asarray(actions), np.asarray(us), np.asarray(state.mean)
    assert int(info["accepted"]) == 1 and int(info["iterations"]) == 1
    if bounds == "clamp":
        assert np.max(np.abs(us)) < 0.9  # the optimum is inside the bounds
    assert np.max(np.abs(actions - us)) <= 1e-8 * max(1.0, np.max(np.abs(us)))
    assert np.max(np.abs(warm - us)) > 0.1  # it did move
    np.testing.assert_allclose(mean, actions)


def fd_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central finite differences of f at x (numpy float64)."""
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        d = np.zeros_like(x)
        d[i] = eps
        g[i] = (f(x + d) - f(x - d)) / (2 * eps)
    return g


def pendulum_problem(x0=(2.5, 0.0)) -> Problem:
    """A torque-limited pendulum (th = 0 up), smooth cost: a nonlinear, non-convex problem."""
    dt = 0.1

    def step(x, u):
        thdot = x[1] + dt * (3.0 * jnp.sin(x[0]) + 1.5 * u[0])
        return jnp.stack([x[0] + dt * thdot, thdot])

    def reward(x, u, nx):
        return -(2.0 * (1.0 - jnp.cos(nx[0])) + 0.05 * nx[1] ** 2 + 0.1 * u[0] ** 2)

    return make_problem(jnp.asarray(x0), step, reward)


@pytest.mark.parametrize("ddp", [False, True])
def test_result_is_a_stationary_point_finite_differences(ddp):
    H = 12
    with jax.enable_x64(True):
        problem = pendulum_problem()
        planner = P.make_planner("ilqr", horizon=H, iterations=60, ddp=ddp, bounds="none",
                                 tolerance=1e-14)
        actions, _, info = plan_once(planner, problem, np.zeros((H, 1)), action_size=1)
        f = jax.jit(lambda a: total_return(problem, a))
        fd = fd_gradient(lambda a: float(f(jnp.asarray(a))), np.asarray(actions))
        fd0 = fd_gradient(lambda a: float(f(jnp.asarray(a))), np.zeros((H, 1)))
        ad = np.asarray(jax.grad(f)(actions))
        ret = float(f(actions))
    assert np.max(np.abs(fd0)) > 0.1  # the warm start is far from stationary
    # Measured: max |grad| 6e-8 (iLQR, 18 iterations), 1e-12 (DDP, 17); 0.2 at the warm start.
    assert np.max(np.abs(fd)) < 1e-5 * np.max(np.abs(fd0)), fd
    np.testing.assert_allclose(ad, fd, atol=1e-7)
    assert int(info["iterations"]) < 60  # converged before the cap
    assert ret > float(info["initial_return"]) and abs(ret - float(info["best_return"])) < 1e-9


def test_bounds_clamp_and_squash_stay_inside_and_improve():
    H = 15
    problem = pendulum_problem((np.pi, 0.0))  # hanging down: needs saturated torques
    for bounds in ("clamp", "squash"):
        planner = P.make_planner("ilqr", horizon=H, iterations=20, bounds=bounds)
        start = np.random.default_rng(0).uniform(-0.3, 0.3, (H, 1)).astype(np.float32)
        actions, _, info = plan_once(planner, problem, start, action_size=1)
        assert np.all(np.abs(actions) <= 1.0)
        assert float(info["best_return"]) > float(info["initial_return"]) + 1.0
        np.testing.assert_allclose(float(total_return(problem, actions)),
                                   float(info["best_return"]), rtol=1e-4)
    assert np.max(np.abs(actions)) > 0.9  # saturating


class PyState(NamedTuple):
    """A pytree state with an int counter: only the float leaves are differentiated."""

    q: jax.Array
    steps: jax.Array


def test_pytree_state_with_integer_leaves_equals_flat_state():
    H = 6
    flat = pendulum_problem()
    tree = make_problem(
        PyState(flat.x0, jnp.zeros((), jnp.int32)),
        lambda x, u: PyState(flat.step(x.q, u), x.steps + 1),
        lambda x, u, nx: flat.reward(x.q, u, nx.q),
    )
    planner = P.make_planner("ilqr", horizon=H, iterations=3)
    a_flat, _, _ = plan_once(planner, flat, action_size=1)
    a_tree, _, _ = plan_once(planner, tree, action_size=1)
    np.testing.assert_allclose(a_tree, a_flat, atol=1e-5)


def test_vmap_over_envs_equals_per_env_hparams_without_retrace_and_shift():
    H = 6
    planner = P.make_planner("ilqr", horizon=H, iterations=3)
    x0s = jnp.array([[2.5, 0.0], [-1.0, 0.5], [0.3, -1.0]])
    traces = []

    def plan(state, x0):
        traces.append(1)
        return planner.plan(state, pendulum_problem()._replace(x0=x0), None, jax.random.PRNGKey(0))

    state = planner.init(1, jax.random.PRNGKey(0))
    states = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (3,) + x.shape), state)
    batched = jax.jit(jax.vmap(plan))(states, x0s)[0]
    single = jax.jit(plan)
    for i in range(3):
        np.testing.assert_allclose(batched[i], single(state, x0s[i])[0], atol=1e-5)
    n = len(traces)
    single(base.with_hparams(state, reg_init=1.0, line_search_decay=0.3), x0s[0])
    assert len(traces) == n  # hparams are leaves: no retrace
    actions, new_state, _ = single(state, x0s[0])
    shifted = planner.shift(new_state, 1)
    np.testing.assert_allclose(shifted.mean[:-1], actions[1:])
    np.testing.assert_allclose(shifted.mean[-1], 0.0)


def test_mpc_on_true_pendulum_swingup_matches_cem():
    """Ground-truth MPC on pendulum_swingup, iLQR (defaults, H 25) vs CEM (200/20, H 25), seed 0,
    one run. Measured: iLQR -363, CEM -362 (benchmarks/ilqr_vs_cem.py: 3 seeds)."""
    from mbjax.envs.registry import make
    from mbjax.rollout import make_env_problem

    env = make("pendulum_swingup")
    problem_for = make_env_problem(env)

    def episode(planner, key):
        k_reset, k_plan = jax.random.split(key)

        def step(carry, k):
            s, ps = carry
            actions, ps, _ = planner.plan(ps, problem_for(s), s.obs, k)
            s = env.step(s, actions[0])
            return (s, planner.shift(ps, 1)), (s.reward, s.obs)

        carry = (env.reset(k_reset), planner.init(env.action_size, k_plan))
        return jax.lax.scan(step, carry, jax.random.split(k_plan, 200))[1]

    key = jax.random.PRNGKey(0)
    ilqr = P.make_planner("ilqr", horizon=25)
    cem = P.make_planner("cem", horizon=25, population=200, num_elites=20)
    r_ilqr, obs = jax.jit(lambda k: episode(ilqr, k))(key)
    r_cem, _ = jax.jit(lambda k: episode(cem, k))(key)
    ret_ilqr, ret_cem = float(r_ilqr.sum()), float(r_cem.sum())
    print(f"pendulum_swingup returns: iLQR {ret_ilqr:.1f} CEM {ret_cem:.1f}")
    assert float(r_ilqr[-50:].mean()) > -0.05 and np.all(np.asarray(obs)[-50:, 0] > 0.95)
    # Returns are negative: ">= 95% of CEM's" means at most 5% of |CEM| below it.
    assert ret_ilqr >= ret_cem - 0.05 * abs(ret_cem)


@pytest.mark.parametrize("field, value", [
    ("horizon", 0), ("iterations", 0), ("line_search_steps", 0), ("bounds", "clip"),
    ("ddp", 1), ("reg_init", -1.0), ("reg_min", 0.0), ("reg_max", 1e-9), ("reg_factor", 1.0),
    ("line_search_decay", 1.0), ("armijo", 1.0), ("tolerance", -1e-3), ("restarts", 0),
    ("restart_std", -0.1), ("restart_noise_beta", -1.0), ("restart_score", "mean"),
])
def test_bad_config_values_raise(field, value):
    with pytest.raises(ValueError, match=f"ILQRConfig.{field}=.* is invalid; allowed") as err:
        P.ILQRConfig(**{field: value})
    assert "\n" not in str(err.value)


def test_bare_objective_is_refused_and_registry():
    planner = P.make_planner("ilqr", horizon=3)
    state = planner.init(1, jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="problem=.*x0, step and reward"):
        planner.plan(state, lambda a: a.sum((1, 2)), None, jax.random.PRNGKey(0))
    assert P.PLANNERS["ilqr"] == (P.ILQRConfig, P.make_ilqr)
    assert P.ILQRConfig(iterations=3, line_search_steps=4).trajectories_per_plan == 13
    assert P.ILQRConfig(iterations=3, line_search_steps=4, restarts=2).trajectories_per_plan == 26


@pytest.mark.parametrize("model_dynamics, restarts", [("mean", 1), ("member", 1), ("member", 3)])
def test_pets_builds_a_dynamics_problem_for_ilqr(model_dynamics, restarts):
    """PETS hands iLQR a PlanningProblem over the learned model (traced abstractly: cheap); its
    restarts are scored by the problem's objective (the particle return over the members)."""
    from mbjax.agents import pets
    from mbjax.agents.pets.presets import preset

    config = pets.with_planner(preset("cartpole_swingup", "test"), "ilqr")
    assert config.planner_config == P.ILQRConfig(restarts=8)  # PETS' iLQR default
    assert pets.Config(planner="ilqr").planner_config == config.planner_config
    config = dataclasses.replace(config, planner_config=P.ILQRConfig(
        horizon=4, iterations=2, model_dynamics=model_dynamics, restarts=restarts))
    run = pets.make_pets(config)
    key = jax.random.PRNGKey(0)
    state = jax.eval_shape(run.init, key)
    plan_state = run.planner.init(run.env.action_size, key)
    obs = jnp.zeros(run.env.observation_size)
    actions, _, info = jax.eval_shape(run.plan, state.model, plan_state, obs, key)
    assert actions.shape == (4, run.env.action_size) and info["iterations"].shape == ()


def double_well_problem(horizon: int) -> Problem:
    """x' = x + u/2 from x0 = 0, reward -(x'^2 - 1)^2 - 0.01 u^2: u = 0 everywhere is a stationary
    point (the reward's gradient vanishes at x = 0) with return -H, the optimum reaches a well at
    x = +-1 in two steps of u = +-1 (return -(0.25 - 1)^2 - 0.02 = -0.5825 at best)."""
    return make_problem(jnp.zeros(1), lambda x, u: x + 0.5 * u,
                        lambda x, u, nx: -(nx[0] ** 2 - 1.0) ** 2 - 0.01 * u[0] ** 2)


def test_restarts_escape_a_stationary_warm_start_and_one_restart_is_deterministic():
    """From the zero warm start iLQR alone stays at the stationary point (return -H, whatever
    the key); perturbed restarts reach a well, and the best of them is returned."""
    H = 6
    problem = double_well_problem(H)
    single = P.make_planner("ilqr", horizon=H, iterations=20)
    a1, _, i1 = plan_once(single, problem, action_size=1)
    state = single.init(1, jax.random.PRNGKey(0))
    a2, _, _ = jax.jit(lambda s: single.plan(s, problem, None, jax.random.PRNGKey(7)))(state)
    np.testing.assert_array_equal(np.asarray(a1), np.asarray(a2))  # key unused with 1 run
    assert np.allclose(np.asarray(a1), 0.0) and float(i1["best_return"]) == pytest.approx(-H)
    multi = P.make_planner("ilqr", horizon=H, iterations=20, restarts=4, restart_score="plan")
    actions, state, info = plan_once(multi, problem, action_size=1)
    ret = float(total_return(problem, actions))
    assert ret == pytest.approx(float(info["best_return"]), rel=1e-5)
    assert -0.6 < ret < -0.58 and int(info["restart"]) > 0  # the best plan: a well in 2 steps
    np.testing.assert_array_equal(np.asarray(state.mean), np.asarray(actions))
    assert float(info["initial_return"]) == pytest.approx(-H)  # the warm start's return


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_restart_score_objective_picks_the_objectives_best(sign):
    """Both wells are optima of the reward; an objective that prefers sign * u_0 > 0 decides
    between the restarts (restart_score="objective"), and the returned plan is still optimal."""
    H = 6
    problem = double_well_problem(H)._replace(objective=lambda a: sign * a[:, 0, 0])
    planner = P.make_planner("ilqr", horizon=H, iterations=20, restarts=8, restart_std=1.0)
    actions, _, info = plan_once(planner, problem, action_size=1)
    assert sign * float(actions[0, 0]) > 0.5
    assert -0.6 < float(total_return(problem, actions)) < -0.58
