"""The worked examples of docs/architecture.md run: a model written against the protocol alone,
a planner using a problem's dynamics and reward, and an algorithm added through its record."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
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


def test_linear_model_example_runs_through_pets_and_mbpo_unchanged():
    """A model written against the protocol alone drives both learners (point_mass is linear)."""
    import dataclasses

    from mbjax.agents import mbpo, pets
    from mbjax.agents.program import make_pure_train

    lm = load_example("linear_model")
    model = lm.LinearModel(state_size=2, action_size=1)
    config = dataclasses.replace(pets.preset("point_mass", "test"), num_episodes=3)
    program = pets.make_program(config, pets.make_pets(config, model=model))
    final, metrics = jax.jit(make_pure_train(program))(jax.random.PRNGKey(0))
    returns = np.asarray(metrics.episode_return)
    assert isinstance(final.model, lm.LinearState)
    assert float(metrics.model_holdout_mse[1]) < 1e-6  # the exact dynamics, fitted in one solve
    assert returns[1:].min() > returns[0] + 20.0, returns  # MPC on it beats the random episode

    config = dataclasses.replace(mbpo.preset("point_mass", "test"), learned_reward=False,
                                 learned_termination=False)
    program = mbpo.make_program(config, mbpo.make_mbpo(config, model=model))
    final, metrics = jax.jit(make_pure_train(program))(jax.random.PRNGKey(0))
    assert isinstance(final.model, lm.LinearState)
    assert int(metrics.extra.buffer_size[-1]) > 0  # it imagined transitions for SAC
    assert np.all(np.isfinite(np.asarray(metrics.episode_return)))
    assert float(metrics.extra.holdout_mse[-1]) < 1e-6
    with pytest.raises(ValueError, match="learned_reward=True needs a model with a reward head"):
        mbpo.make_mbpo(mbpo.preset("point_mass", "test"), model=model)


def test_oracle_mpc_example_is_an_algorithm_the_registry_and_driver_run(tmp_path, monkeypatch):
    from mbjax import acting, agents, envs
    from mbjax.agents import driver

    oracle = load_example("oracle_mpc")
    monkeypatch.setitem(agents.ALGORITHMS, "oracle_mpc", oracle.__name__)  # the registry line
    algo = agents.get("oracle_mpc")
    config = algo.preset("point_mass", "test")
    make_policy, final, records = driver.train(
        algo, "point_mass", config, seed=0, checkpoint_dir=str(tmp_path / "ckpt"))
    assert [r["episode"] for r in records] == [0, 1, 2]

    def stop_after_two(record):
        if record["episode"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # a run killed after its second episode ...
        driver.train(algo, "point_mass", config, seed=0, progress_fn=stop_after_two,
                     checkpoint_dir=str(tmp_path / "killed"))
    _, _, resumed = driver.train(algo, "point_mass", config, seed=0, resume=True,
                                 checkpoint_dir=str(tmp_path / "killed"))
    # ... resumes to exactly the uninterrupted records.
    assert [r["episode_return"] for r in resumed] == [r["episode_return"] for r in records]
    env = envs.make("point_mass")
    random_returns = acting.evaluate(
        env, lambda p, obs, k: acting.random_actions(k, obs.shape[:-1] + (1,)), None,
        jax.random.PRNGKey(1), 8, env.episode_length)
    assert min(r["episode_return"] for r in records) > float(random_returns.max()), (
        records, random_returns)
    # Its policy acts from env states; one MPC step moves toward the goal like the program did.
    init_carry, policy = make_policy(final)
    state = env.reset(jax.random.PRNGKey(2))
    _, action, info = jax.jit(policy)(init_carry(jax.random.PRNGKey(3)), state,
                                      jax.random.PRNGKey(4))
    assert action.shape == (1,) and np.isfinite(float(info["best_return"]))
    with pytest.raises(ValueError, match="preset='huge'"):
        algo.preset("point_mass", "huge")
