"""The worked examples of docs/architecture.md run: a model written against the protocol alone,
a planner using a problem's dynamics and reward, and an algorithm added through its record."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
from docs_examples import load_example

from mbjax.planners import with_hparams
from mbjax.rollout import PropagationConfig, make_model_problem


def double_integrator():
    """x = (position, velocity), dt 0.1, one action: the linear example model, weights set."""
    lm = load_example("linear_model")
    model = lm.LinearModel(state_size=2, action_size=1)
    a = np.array([[1.0, 0.1], [0.0, 1.0]])
    b = np.array([[0.005], [0.1]])
    w = np.concatenate([a.T, b.T, np.zeros((1, 2))], axis=0)  # [x, u, 1] @ w
    return model, lm.LinearState(weights=jnp.asarray(w, jnp.float32), sigma=jnp.zeros(2))


def reach_origin(obs, action, next_obs):
    return -jnp.sum(next_obs**2) - 0.01 * jnp.sum(action**2)


def test_trajectory_planner_example_on_the_linear_model_example():
    tp = load_example("trajectory_planner")
    model, state = double_integrator()
    problem_for = make_model_problem(model, PropagationConfig("expectation", 1), reach_origin)
    planner = tp.make_trajectory_planner(tp.TrajectoryConfig(horizon=15, steps=60))
    obs = jnp.array([1.0, 0.0])
    problem = problem_for(state, obs, jax.random.PRNGKey(0))

    def plan_from(ps, obs, key):  # a problem holds functions: build it inside jit
        return planner.plan(ps, problem_for(state, obs, key), obs, key)

    chex.clear_trace_counter()
    plan = jax.jit(chex.assert_max_traces(plan_from, n=1))
    ps = planner.init(1, jax.random.PRNGKey(1))
    actions, ps_out, info = plan(ps, obs, jax.random.PRNGKey(0))
    assert actions.shape == (15, 1) and np.all(np.abs(actions) <= 1.0)
    # The dynamics/reward rollout and the sampling objective agree on the same plan ...
    planned = tp.trajectory_return(problem, actions)
    np.testing.assert_allclose(problem.objective(actions[None])[0], planned, rtol=1e-5)
    np.testing.assert_allclose(info["best_return"], planned, rtol=1e-5)
    # ... and the plan pushes toward the origin: much better than doing nothing.
    idle = tp.trajectory_return(problem, jnp.zeros((15, 1)))
    assert float(planned) > float(idle) + 0.25 * abs(float(idle))
    # Near the optimum: a 20x longer optimisation improves it by less than 2%.
    long = tp.make_trajectory_planner(tp.TrajectoryConfig(horizon=15, steps=1200))
    long_plan = jax.jit(lambda p, o, k: long.plan(p, problem_for(state, o, k), o, k))
    best = float(long_plan(ps, obs, jax.random.PRNGKey(0))[2]["best_return"])
    assert best >= float(planned) - 1e-4 and float(planned) > best - 0.02 * abs(best)
    assert float(actions[0, 0]) < -0.5  # start at +1: accelerate backwards first
    # The learning rate is a leaf: another value, no retrace, another plan.
    slow = with_hparams(ps, learning_rate=1e-3)
    actions_slow, _, _ = plan(slow, obs, jax.random.PRNGKey(0))
    assert not np.allclose(actions_slow, actions)
