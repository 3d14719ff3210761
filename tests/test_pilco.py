"""PILCO: the analytic moments of its nonlinear maps against Monte Carlo (float64, seeded; the
checks hold for other seeds), the gradient of the expected long-term cost against finite
differences, and the learner end to end (CLI, checkpoints, exact resume)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mbjax.agents import pilco
from mbjax.agents.pilco import moments as mm
from mbjax.agents.pilco import policy as pol
from mbjax.agents.pilco.propagation import obs_state, predict_trajectory, state_delta
from mbjax.models.gp import GPConfig, exact_posterior, initial_hyper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N = 100_000


def _gaussian(seed: int, n: int, scale: float = 0.6):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, n)) * scale
    return jnp.asarray(rng.normal(size=n)), jnp.asarray(a @ a.T + 0.05 * np.eye(n))


def _check(mean, cov, samples):
    """Analytic (mean, cov) of the joint against samples [N, k]: mean within 0.02 std, every
    covariance entry within 5% of sqrt(var_i var_j)."""
    samples = np.asarray(samples)
    mc_mean, mc_cov = samples.mean(0), np.cov(samples.T)
    std = np.sqrt(np.diag(mc_cov))
    assert np.all(np.abs(np.asarray(mean) - mc_mean) < 0.02 * std), (mean, mc_mean)
    assert np.all(np.abs(np.asarray(cov) - mc_cov) < 0.05 * np.outer(std, std)), (cov, mc_cov)


@pytest.mark.parametrize("seed", [0, 1])
def test_trig_and_saturation_moments_agree_with_monte_carlo(seed):
    with jax.enable_x64(True):
        m, s = _gaussian(seed, 3)
        x = jax.random.multivariate_normal(jax.random.PRNGKey(seed), m, s, (N,))
        # [x0, x1, x2, sin x2, cos x2]: the joint, cross-covariances included
        jm, js = mm.append_trig(m, s, (2,))
        _check(jm, js, jnp.concatenate([x, jnp.sin(x[:, 2:]), jnp.cos(x[:, 2:])], 1))
        # [x, u] with u = 2 (9 sin x1 + sin 3 x1) / 8
        jm, js = mm.append_saturation(m, s, jnp.array([1]), limit=2.0)
        _check(jm, js, jnp.concatenate([x, mm.saturate(x[:, 1:2], 2.0)], 1))


@pytest.mark.parametrize("seed", [0, 1])
def test_expected_saturating_cost_agrees_with_monte_carlo(seed):
    with jax.enable_x64(True):
        m, s = _gaussian(seed + 5, 2, scale=0.3)
        target, width = jnp.array([0.2, -0.1]), 0.5
        y = jax.random.multivariate_normal(jax.random.PRNGKey(seed), m, s, (N,))
        costs = jax.vmap(lambda v: mm.saturating_cost(v, target, width))(y)
        expected = mm.expected_saturating_cost(m, s, target, width)
        assert abs(float(expected) - float(costs.mean())) < 0.02 * float(costs.std())


def test_linear_policy_moments_and_state_conversion():
    with jax.enable_x64(True):
        m, s = _gaussian(3, 4)
        params = pol.LinearParams(jnp.asarray([[0.5, -1.0, 0.2, 0.3]]), jnp.asarray([0.1]))
        mean, cov, io = pol.moments(params, m, s)
        x = jax.random.multivariate_normal(jax.random.PRNGKey(0), m, s, (N,))
        u = jax.vmap(lambda v: pol.evaluate(params, v))(x)
        _check(jnp.concatenate([m, mean]), jnp.block([[s, s @ io], [(s @ io).T, cov]]),
               jnp.concatenate([x, u], 1))
    spec = pilco.task_spec("cartpole_swingup")
    obs = jnp.array([0.3, jnp.sin(3.1), jnp.cos(3.1), -0.2, 1.5])
    nxt = jnp.array([0.35, jnp.sin(-3.1), jnp.cos(-3.1), -0.1, 1.6])
    np.testing.assert_allclose(obs_state(spec, obs), [0.3, -0.2, 1.5, 3.1], atol=1e-6)
    # crossing the wrap at pi: the delta is the short way round
    np.testing.assert_allclose(state_delta(spec, obs, nxt), [0.05, 0.1, 0.1, 2 * np.pi - 6.2],
                               atol=1e-5)


def test_expected_long_term_cost_gradient_matches_finite_differences():
    """d/d params of sum_t E[cost(z_t)] through moment-matched GP + RBF policy + saturation."""
    with jax.enable_x64(True):
        spec = pilco.task_spec("cartpole_swingup")
        rng = np.random.default_rng(0)
        x = jnp.asarray(rng.normal(size=(25, 6)))  # [x, xd, thd, sin, cos, u]
        y = jnp.asarray(0.1 * np.tanh(x[:, :4] + x[:, 5:6]))
        post = exact_posterior(initial_hyper(x, y, jnp.ones(25)), x, y, jnp.ones(25), 1e-6)
        m0 = jnp.asarray(spec.init_mean)
        s0 = jnp.diag(jnp.asarray(spec.init_std) ** 2)
        params = pol.init_params("rbf", 5, 1, 4, jnp.zeros(5), jnp.eye(5), jax.random.PRNGKey(1))
        params = jax.tree.map(lambda v: jnp.asarray(v, jnp.float64), params)
        loss = jax.jit(lambda p: jnp.sum(predict_trajectory(spec, post, p, m0, s0, 4,
                                                            0.25).costs))
        grad = jax.jit(jax.grad(loss))(params)
        flat, unravel = jax.flatten_util.ravel_pytree(params)
        g = jax.flatten_util.ravel_pytree(grad)[0]
        for i in range(0, flat.shape[0], 3):
            e = jnp.zeros_like(flat).at[i].set(1e-6)
            fd = (loss(unravel(flat + e)) - loss(unravel(flat - e))) / 2e-6
            assert abs(float(fd) - float(g[i])) < 1e-5 + 1e-4 * abs(float(fd)), (i, fd, g[i])


def test_policy_search_lowers_the_expected_cost():
    """Adam lowers the predicted long-term cost on a toy GP and returns the best iterate with
    its cost; the policy starts from the toolbox's broad RBF initialisation."""
    spec = pilco.task_spec("cartpole_swingup")
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.normal(size=(25, 6)), jnp.float32)
    y = 0.3 * jnp.tanh(x[:, :4] + x[:, 5:6])
    post = exact_posterior(initial_hyper(x, y, jnp.ones(25)), x, y, jnp.ones(25), 1e-4)
    # a wide cost, so the toy problem's cost is not saturated at 1 per step
    config = dataclasses.replace(pilco.preset("cartpole_swingup", "test"), policy_steps=8,
                                 cost_width=2.0)
    m0 = jnp.asarray(spec.init_mean, jnp.float32)
    s0 = jnp.diag(jnp.asarray(spec.init_std, jnp.float32) ** 2)
    params = pilco.make_program(config).init(jax.random.PRNGKey(3)).policy

    def cost(p):
        return float(jnp.sum(predict_trajectory(spec, post, p, m0, s0, config.horizon,
                                                config.cost_width).costs))

    best, value = jax.jit(lambda p: pilco.optimise_policy(config, post, p, 0.05))(params)
    assert abs(float(value) - cost(best)) < 1e-4
    assert float(value) < 0.98 * cost(params), (float(value), cost(params))
    # the RBF centres spread around the start features (the toolbox's broad initialisation)
    assert float(jnp.std(params.centres[:, 0])) > 0.3


def test_config_validation_and_unsupported_env():
    with pytest.raises(ValueError, match=r"Config.policy='mlp' is invalid"):
        pilco.Config(policy="mlp")
    with pytest.raises(ValueError, match=r"Config.centre_spread=0.0 is invalid"):
        pilco.Config(centre_spread=0.0)
    with pytest.raises(ValueError, match=r"Config.random_episodes=5 is invalid"):
        pilco.Config(episodes=3, random_episodes=5)
    with pytest.raises(ValueError, match="pilco has no task description for env point_mass"):
        pilco.make_program(pilco.preset("point_mass", "test"))


def test_train_cli_end_to_end(tmp_path):
    out = str(tmp_path / "run")
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.train", "--algo=pilco", "--env=cartpole_swingup",
         "--preset=test", "--quiet", f"--output_dir={out}"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert os.path.exists(os.path.join(out, "metrics.jsonl"))


def test_interrupted_and_resumed_run_equals_uninterrupted(tmp_path):
    from resume_check import assert_resume_matches

    config = dataclasses.replace(pilco.preset("cartpole_swingup", "test"), episodes=3,
                                 gp=GPConfig(max_points=12, fit_steps=3))
    make_policy, final, full = pilco.train("cartpole_swingup", config, seed=2)
    assert len(full) == 3 and all(np.isfinite(r["predicted_cost"]) for r in full)
    assert full[-1]["env_steps"] == 30  # 3 episodes of ceil(30 / 3) steps
    init_carry, policy = make_policy(final)
    _, action, _ = policy(init_carry(None), jnp.zeros(5), None)
    assert action.shape == (1,) and float(jnp.abs(action[0])) <= 1.0
    assert_resume_matches(pilco.train, full, str(tmp_path / "ck"), 2, env="cartpole_swingup",
                          config=config, seed=2)
