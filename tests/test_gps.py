"""Guided policy search (issue 14 item 3): dynamics fit, NIW posterior, KL, eta search,
step-size rule, learning on cartpole_balance, CLI and exact resume.

float64 checks run inside `jax.enable_x64(True)` (a context manager, so x64 does not leak into
other tests).
"""

import dataclasses
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mbjax.agents import gps
from mbjax.agents.gps import trajectory
from mbjax.agents.program import make_pure_train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _spd(rng, n, scale=1.0):
    m = rng.normal(size=(n, n))
    return scale * (m @ m.T / n + 0.5 * np.eye(n))


def _np_niw(mu0, phi, m, n0, ys, w):
    n = w.sum()
    ybar = (w[:, None] * ys).sum(0) / n
    scatter = sum(wi * np.outer(y - ybar, y - ybar) for wi, y in zip(w, ys, strict=True))
    mean = (m * mu0 + n * ybar) / (m + n)
    psi = phi + scatter + m * n / (m + n) * np.outer(ybar - mu0, ybar - mu0)
    return mean, psi / (n0 + n)


def test_niw_posterior_and_moments_match_numpy():
    rng = np.random.default_rng(0)
    d = 5
    with jax.enable_x64(True):
        ys, w = rng.normal(size=(7, d)) * 2 + 1, rng.uniform(0.2, 1.0, size=7)
        mu0, phi = rng.normal(size=d), _spd(rng, d)
        prior = gps.NIWPrior(jnp.asarray(mu0), jnp.asarray(phi), jnp.float64(3.0),
                             jnp.float64(4.5))
        posterior = jax.jit(gps.niw_posterior)
        mean, cov = posterior(prior, jnp.asarray(ys), jnp.asarray(w))
        want_mean, want_cov = _np_niw(mu0, phi, 3.0, 4.5, ys, w)
        np.testing.assert_allclose(mean, want_mean, rtol=1e-12)
        np.testing.assert_allclose(cov, want_cov, rtol=1e-12)
        # No samples: the prior's mean and Phi / n0.
        mean0, cov0 = posterior(prior, jnp.asarray(ys), jnp.zeros(7))
        np.testing.assert_allclose(mean0, mu0, rtol=1e-12)
        np.testing.assert_allclose(cov0, phi / 4.5, rtol=1e-12)
        # Merged running moments equal the moments of the union.
        a = gps.moments_of(jnp.asarray(ys[:3]), jnp.asarray(w[:3]))
        b = gps.moments_of(jnp.asarray(ys[3:]), jnp.asarray(w[3:]))
        both = gps.merge_moments(a, b)
        np.testing.assert_allclose(both.mean, (w[:, None] * ys).sum(0) / w.sum(), rtol=1e-12)
        full = gps.moments_of(jnp.asarray(ys), jnp.asarray(w))
        np.testing.assert_allclose(both.scatter, full.scatter, rtol=1e-10)


def test_dynamics_fit_recovers_known_linear_gaussian_system():
    """Per-step fits of x' = A_t x + B_t u + c_t + noise equal numpy's least squares (weak
    prior), ignore masked rows, and are near the truth."""
    rng = np.random.default_rng(1)
    s, a, T, N = 3, 2, 4, 4000
    A = rng.normal(size=(T, s, s)) * 0.5
    B = rng.normal(size=(T, s, a))
    c = rng.normal(size=(T, s))
    noise_std = 0.1
    xs = rng.normal(size=(N, T, s))
    us = rng.normal(size=(N, T, a))
    nxt = (np.einsum("tij,ntj->nti", A, xs) + np.einsum("tij,ntj->nti", B, us) + c
           + noise_std * rng.normal(size=(N, T, s)))
    valid = np.ones((N, T))
    valid[: N // 4, 2:] = 0.0  # masked rows hold garbage that must not matter
    xs_bad, nxt_bad = xs.copy(), nxt.copy()
    xs_bad[: N // 4, 2:] = 1e3
    nxt_bad[: N // 4, 2:] = -1e3
    with jax.enable_x64(True):
        moments = gps.moments_of(jnp.asarray(np.concatenate([xs, us, nxt], -1).reshape(-1, 8)),
                                 jnp.ones(N * T))
        prior = gps.global_prior(moments, jnp.float64(1e-6), 0.0)
        fit = jax.jit(gps.fit_dynamics, static_argnums=5)(
            prior, jnp.asarray(xs_bad), jnp.asarray(us), jnp.asarray(nxt_bad),
            jnp.asarray(valid), 0.0)
    for t in range(T):
        rows = valid[:, t] > 0
        design = np.concatenate([xs[rows, t], us[rows, t], np.ones((rows.sum(), 1))], 1)
        coef, *_ = np.linalg.lstsq(design, nxt[rows, t], rcond=None)
        resid = nxt[rows, t] - design @ coef
        np.testing.assert_allclose(fit.F[t], coef[:-1].T, atol=1e-6)
        np.testing.assert_allclose(fit.f[t], coef[-1], atol=1e-6)
        np.testing.assert_allclose(fit.cov[t], resid.T @ resid / rows.sum(), atol=1e-6)
        np.testing.assert_allclose(fit.F[t], np.concatenate([A[t], B[t]], 1), atol=0.02)
        np.testing.assert_allclose(np.diag(fit.cov[t]), noise_std**2, rtol=0.1)


def _random_system(rng, s=3, a=2, T=5):
    dyn = gps.LinearGaussianDynamics(
        F=jnp.asarray(np.concatenate([np.eye(s) + 0.1 * rng.normal(size=(T, s, s)),
                                      0.3 * rng.normal(size=(T, s, a))], -1)),
        f=jnp.asarray(0.1 * rng.normal(size=(T, s))),
        cov=jnp.asarray(np.stack([_spd(rng, s, 0.01) for _ in range(T)])),
        x0_mean=jnp.asarray(rng.normal(size=s)), x0_cov=jnp.asarray(_spd(rng, s, 0.1)))
    old = gps.Controller(K=jnp.asarray(0.3 * rng.normal(size=(T, a, s))),
                         k=jnp.asarray(0.3 * rng.normal(size=(T, a))),
                         cov=jnp.asarray(np.stack([_spd(rng, a, 0.5) for _ in range(T)])))
    d = s + a
    cost = gps.QuadraticCost(
        C=jnp.asarray(np.stack([_spd(rng, d) for _ in range(T)])),
        c=jnp.asarray(rng.normal(size=(T, d))), c0=jnp.zeros(T),
        C_final=jnp.asarray(_spd(rng, s)), c_final=jnp.asarray(rng.normal(size=s)),
        c0_final=jnp.float64(0.0))
    return dyn, old, cost


def _gauss_kl(m1, S1, m0, S0):
    P0 = np.linalg.inv(S0)
    d = m1 - m0
    return 0.5 * (np.trace(P0 @ S1) + d @ P0 @ d - len(m1)
                  + np.linalg.slogdet(S0)[1] - np.linalg.slogdet(S1)[1])


def test_forward_and_kl_match_numpy_monte_carlo():
    rng = np.random.default_rng(2)
    with jax.enable_x64(True):
        dyn, old, _ = _random_system(rng)
        _, new, _ = _random_system(np.random.default_rng(3))
        traj = gps.forward(dyn, new)
        kl = np.asarray(gps.kl_per_step(new, old, traj))
    # Monte Carlo of the state marginals by sampling the linear-Gaussian system in numpy.
    n, s = 200_000, 3
    x = rng.multivariate_normal(np.asarray(dyn.x0_mean), np.asarray(dyn.x0_cov), size=n)
    for t in range(5):
        np.testing.assert_allclose(x.mean(0), traj.mean[t, :s], atol=0.02)
        np.testing.assert_allclose(np.cov(x.T), traj.cov[t, :s, :s], atol=0.03)
        mu_new = x @ np.asarray(new.K[t]).T + np.asarray(new.k[t])
        mu_old = x @ np.asarray(old.K[t]).T + np.asarray(old.k[t])
        S1, S0 = np.asarray(new.cov[t]), np.asarray(old.cov[t])
        # KL of two Gaussians per sampled x: only the mean difference depends on x.
        d = mu_new - mu_old
        mc = _gauss_kl(np.zeros(2), S1, np.zeros(2), S0) + 0.5 * np.mean(
            np.einsum("na,ab,nb->n", d, np.linalg.inv(S0), d))
        np.testing.assert_allclose(kl[t], mc, rtol=0.03)
        u = mu_new + rng.multivariate_normal(np.zeros(2), S1, size=n)
        y = np.concatenate([x, u], 1)
        x = (y @ np.asarray(dyn.F[t]).T + np.asarray(dyn.f[t])
             + rng.multivariate_normal(np.zeros(s), np.asarray(dyn.cov[t]), size=n))


def test_kl_augmented_lqr_one_step_equals_numpy():
    """T = 1: the max-entropy controller of cost / eta - log p_old in closed form."""
    rng = np.random.default_rng(4)
    with jax.enable_x64(True):
        dyn, old, cost = _random_system(rng, T=1)
        eta = 0.7
        ctrl, ok = trajectory.lqr_controller(trajectory.augmented_problem(dyn, cost, old,
                                                                          jnp.float64(eta)))
    s = 3
    F, f = np.asarray(dyn.F[0]), np.asarray(dyn.f[0])
    Cf, cf = np.asarray(cost.C_final), np.asarray(cost.c_final)
    H = (np.asarray(cost.C[0]) + F.T @ Cf @ F) / eta
    g = (np.asarray(cost.c[0]) + F.T @ (Cf @ f + cf)) / eta
    P0 = np.linalg.inv(np.asarray(old.cov[0]))
    K0, k0 = np.asarray(old.K[0]), np.asarray(old.k[0])
    # -log p_old(u|x) = 1/2 (u - K0 x - k0)' P0 (u - K0 x - k0)
    E = np.concatenate([-K0, np.eye(2)], 1)
    H = H + E.T @ P0 @ E
    g = g - E.T @ P0 @ k0
    quu, qux, qu = H[s:, s:], H[s:, :s], g[s:]
    assert bool(ok)
    np.testing.assert_allclose(ctrl.K[0], -np.linalg.solve(quu, qux), rtol=1e-9)
    np.testing.assert_allclose(ctrl.k[0], -np.linalg.solve(quu, qu), rtol=1e-9)
    np.testing.assert_allclose(ctrl.cov[0], np.linalg.inv(quu), rtol=1e-9)


def test_eta_search_hits_the_kl_target():
    rng = np.random.default_rng(5)
    with jax.enable_x64(True):
        dyn, old, cost = _random_system(rng, T=8)
        search = jax.jit(lambda e: gps.solve_eta(dyn, cost, old, e, 1e-6, 1e10, 0.01, 60))
        before = float(gps.expected_cost(cost, gps.forward(dyn, old)))
        for epsilon in (0.05, 0.5):
            res = search(jnp.float64(epsilon))
            traj = gps.forward(dyn, res.controller)
            again = np.asarray(gps.kl_per_step(res.controller, old, traj)).mean()
            after = float(gps.expected_cost(cost, traj))
            assert bool(res.ok) and int(res.iterations) < 60
            assert abs(float(res.kl) - epsilon) <= 0.01 * epsilon
            np.testing.assert_allclose(again, float(res.kl), rtol=1e-9)
            assert after < before  # a KL-bounded step improves the expected cost


def test_step_size_rule_and_cost_expansion():
    mult = gps.adjust_step(jnp.float32(1.0), jnp.float32(2.0), jnp.float32(1.5), 0.01, 10.0)
    np.testing.assert_allclose(mult, 2.0 / (2 * 0.5), rtol=1e-6)  # predicted/(2 (p - a))
    # Actual worse than predicted by far: shrink, by at most 10x; better: grow, by at most 5x.
    assert float(gps.adjust_step(jnp.float32(1.0), jnp.float32(1.0), jnp.float32(-50.0),
                                 0.01, 10.0)) == pytest.approx(0.1)
    assert float(gps.adjust_step(jnp.float32(4.0), jnp.float32(1.0), jnp.float32(0.99999),
                                 0.01, 10.0)) == pytest.approx(10.0)
    # The expansion of a quadratic cost is exact, whatever the point.
    rng = np.random.default_rng(6)
    with jax.enable_x64(True):
        C = _spd(rng, 4)
        stage = lambda y, t: 0.5 * y @ C @ y + jnp.sin(0.0 * t) + y[0]  # noqa: E731
        final = lambda x: x @ x  # noqa: E731
        traj = gps.TrajectoryDistribution(jnp.asarray(rng.normal(size=(3, 4))), None,
                                          jnp.asarray(rng.normal(size=2)), None)
        q = jax.jit(lambda tr: gps.expand_cost(stage, final, tr))(traj)
        y = rng.normal(size=4)
        np.testing.assert_allclose(0.5 * y @ q.C[1] @ y + q.c[1] @ y + q.c0[1],
                                   0.5 * y @ C @ y + y[0], rtol=1e-10)


def _balance_config(**kw):
    base = dict(iterations=3, num_rollouts=5, episode_length=100, policy_hidden_sizes=(32,),
                policy_steps=100, eval_episodes=2)
    base.update(kw)
    return dataclasses.replace(gps.preset("cartpole_balance", "cpu"), **base)


def test_gps_balances_cartpole_and_keeps_the_kl_at_epsilon():
    config = _balance_config()
    _, m = jax.jit(make_pure_train(gps.make_program(config)))(jax.random.PRNGKey(0))
    assert bool(np.all(m.eta_ok)) and not bool(np.any(m.nonfinite))
    ratio = np.asarray(m.kl) / np.asarray(m.kl_target)
    assert np.all(np.abs(ratio - 1.0) <= 0.2), ratio
    assert float(m.sample_return[0]) < 60  # the first, random controller falls
    assert float(np.max(m.episode_return)) >= 95.0, m.episode_return  # of 100 steps
    np.testing.assert_array_equal(np.diff(m.env_steps) > 0, True)


def test_grid_leaves_and_bad_inputs():
    config = gps.preset("cartpole_balance", "test")
    assert set(gps.grid_leaves(config)) == {"kl_step", "prior_strength", "state_cost",
                                            "action_cost", "policy_learning_rate"}
    with pytest.raises(ValueError, match="discrete actions; gps needs continuous"):
        gps.make_program(dataclasses.replace(config, env="maze/dyna"))
    with pytest.raises(ValueError, match=r"Config.kl_step=0.0 is invalid"):
        dataclasses.replace(config, kl_step=0.0)
    with pytest.raises(ValueError, match=r"Config.eta_max=1e-11 is invalid"):
        dataclasses.replace(config, eta_max=1e-11)


def test_train_cli_end_to_end(tmp_path):
    out = str(tmp_path / "run")
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.train", "--algo=gps", "--env=cartpole_balance",
         "--preset=test", "--quiet", f"--output_dir={out}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert os.path.exists(os.path.join(out, "metrics.jsonl"))


def test_interrupted_and_resumed_run_equals_uninterrupted(tmp_path):
    from resume_check import assert_resume_matches

    config = dataclasses.replace(gps.preset("cartpole_balance", "test"), iterations=3)
    _, _, full = gps.train("cartpole_balance", config, seed=3)
    assert len(full) == 3
    assert_resume_matches(gps.train, full, str(tmp_path / "ck"), 2, env="cartpole_balance",
                          config=config, seed=3)
