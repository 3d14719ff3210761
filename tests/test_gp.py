"""GP dynamics (mbjax.models.gp): exact prediction against numpy in float64, moment matching
against Monte Carlo, FITC, the model protocol and PETS running with the GP unchanged.

The float64 checks run under `jax.enable_x64(True)` (local to each test; the library never flips
x64 globally)."""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mbjax import acting, replay
from mbjax.models import check_model
from mbjax.models.gp import (
    GPConfig,
    Hyper,
    exact_posterior,
    fit_gp,
    fitc_posterior,
    initial_hyper,
    make_gp,
    moment_match,
    neg_log_marginal,
    predict,
    predict_moments,
)


def _problem(seed: int, n: int = 40, e: int = 3, o: int = 2):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, e))
    y = np.stack([np.sin(x[:, 0]) + 0.5 * x[:, 1], np.cos(x[:, 1]) * x[:, 2]], -1)[:, :o]
    y = y + 0.05 * rng.normal(size=y.shape)
    hyper = Hyper(np.log(rng.uniform(0.7, 1.5, (o, e))), np.log(rng.uniform(0.5, 1.5, o)),
                  np.log(rng.uniform(0.05, 0.2, o)))
    return x, y, hyper


def _numpy_gp(x, y, hyper, xs):
    """Reference: textbook GP regression (Rasmussen & Williams alg. 2.1) in numpy float64."""
    means, variances, nlls = [], [], []
    for o in range(y.shape[1]):
        ell = np.exp(hyper.log_lengthscale[o])
        sf2, sn2 = np.exp(2 * hyper.log_signal_std[o]), np.exp(2 * hyper.log_noise_std[o])
        k = lambda a, b: sf2 * np.exp(-0.5 * (((a[:, None] - b[None]) / ell) ** 2).sum(-1))
        gram = k(x, x) + sn2 * np.eye(len(x))
        ks = k(xs, x)
        alpha = np.linalg.solve(gram, y[:, o])
        means.append(ks @ alpha)
        variances.append(sf2 - np.einsum("ij,ji->i", ks, np.linalg.solve(gram, ks.T)))
        nlls.append(0.5 * y[:, o] @ alpha + 0.5 * np.linalg.slogdet(gram)[1]
                    + 0.5 * len(x) * np.log(2 * np.pi))
    return np.stack(means, -1), np.stack(variances, -1), np.array(nlls)


def test_exact_prediction_and_marginal_likelihood_equal_numpy_in_float64():
    with jax.enable_x64(True):
        x, y, hyper = _problem(0)
        xs = np.random.default_rng(1).normal(size=(25, 3))
        # Padded masked rows must change nothing.
        xp = np.concatenate([x, 9.0 * np.ones((5, 3))])
        yp = np.concatenate([y, 7.0 * np.ones((5, 2))])
        mask = np.concatenate([np.ones(40), np.zeros(5)])
        post = jax.jit(exact_posterior, static_argnums=4)(
            jax.tree.map(jnp.asarray, hyper), jnp.asarray(xp), jnp.asarray(yp), jnp.asarray(mask),
            0.0)
        mean, var = jax.jit(predict)(post, jnp.asarray(xs))
        ref_mean, ref_var, ref_nll = _numpy_gp(x, y, hyper, xs)
        assert mean.dtype == jnp.float64
        np.testing.assert_allclose(mean, ref_mean, atol=1e-6, rtol=0)
        np.testing.assert_allclose(var, ref_var, atol=1e-6, rtol=0)
        for o in range(2):
            h_o = jax.tree.map(lambda v: jnp.asarray(v[o]), hyper)
            nll = neg_log_marginal(h_o, jnp.asarray(xp), jnp.asarray(yp[:, o]), jnp.asarray(mask),
                                   0.0)
            np.testing.assert_allclose(nll, ref_nll[o], atol=1e-6, rtol=0)


def test_fitc_with_inducing_points_at_the_data_equals_the_exact_gp():
    with jax.enable_x64(True):
        x, y, hyper = _problem(2, n=30)
        hyper = jax.tree.map(jnp.asarray, hyper)
        xs = jnp.asarray(np.random.default_rng(3).normal(size=(10, 3)))
        ones = jnp.ones(30)
        exact = jax.jit(lambda h, x, y: predict(exact_posterior(h, x, y, ones, 0.0), xs))(
            hyper, jnp.asarray(x), jnp.asarray(y))
        fitc = jax.jit(lambda h, x, y: predict(fitc_posterior(h, x, y, ones, x, ones, 0.0), xs))(
            hyper, jnp.asarray(x), jnp.asarray(y))
        np.testing.assert_allclose(fitc[0], exact[0], atol=1e-6)
        np.testing.assert_allclose(fitc[1], exact[1], atol=1e-6)


@functools.partial(jax.jit, static_argnums=4)
def _mc_moments(post, m, s, key, n=100_000):
    """Monte Carlo moments of f(x), x ~ N(m, s): law of total variance over exact predictions."""
    xs = jax.random.multivariate_normal(key, m, s, (n,))
    mean, var = predict(post, xs)
    mc_mean = mean.mean(0)
    mc_cov = jnp.cov(mean.T) + jnp.diag(var.mean(0))
    cross = (xs - xs.mean(0)).T @ (mean - mc_mean) / (n - 1)
    return mc_mean, mc_cov, cross


@pytest.mark.parametrize("seed, sparse", [(0, False), (1, True)])
def test_moment_matching_agrees_with_monte_carlo(seed, sparse):
    with jax.enable_x64(True):
        x, y, hyper = _problem(10 + seed, n=60)
        hyper = jax.tree.map(jnp.asarray, hyper)
        x, y, ones = jnp.asarray(x), jnp.asarray(y), jnp.ones(60)
        if sparse:  # 20 inducing inputs
            post = jax.jit(fitc_posterior, static_argnums=6)(hyper, x, y, ones, x[:20],
                                                             jnp.ones(20), 1e-8)
        else:
            post = jax.jit(exact_posterior, static_argnums=4)(hyper, x, y, ones, 0.0)
        rng = np.random.default_rng(100 + seed)
        m = jnp.asarray(rng.normal(scale=0.5, size=3))
        a = rng.normal(size=(3, 3)) * 0.4
        s = jnp.asarray(a @ a.T + 0.05 * np.eye(3))
        mean, cov, cross = jax.jit(predict_moments)(post, m, s)
        mc_mean, mc_cov, mc_cross = _mc_moments(post, m, s, jax.random.PRNGKey(seed))
        std = np.sqrt(np.diag(mc_cov))
        assert np.all(np.abs(mean - mc_mean) < 0.02 * std), (mean, mc_mean, std)
        scale = np.sqrt(np.outer(np.diag(mc_cov), np.diag(mc_cov)))
        assert np.all(np.abs(cov - mc_cov) < 0.05 * scale), (cov, mc_cov)
        x_scale = np.sqrt(np.outer(np.diag(s), np.diag(mc_cov)))
        assert np.all(np.abs(cross - mc_cross) < 0.05 * x_scale), (cross, mc_cross)


def test_rbf_network_moments_without_posterior_variance():
    """with_variance=False is a deterministic RBF network (PILCO's policy): MC of the mean fn."""
    with jax.enable_x64(True):
        x, y, hyper = _problem(5, n=15)
        post = jax.jit(exact_posterior, static_argnums=4)(
            jax.tree.map(jnp.asarray, hyper), jnp.asarray(x), jnp.asarray(y), jnp.ones(15), 0.0)
        m, s = jnp.zeros(3), 0.3 * jnp.eye(3)
        out = jax.jit(moment_match, static_argnums=3)(post, m, s, False)
        xs = jax.random.multivariate_normal(jax.random.PRNGKey(4), m, s, (100_000,))
        f = jax.jit(predict)(post, xs)[0]
        std = np.sqrt(np.diag(np.cov(f.T)))
        assert np.all(np.abs(out.mean - f.mean(0)) < 0.02 * std)
        np.testing.assert_allclose(np.diag(out.cov), np.diag(np.cov(f.T)), rtol=0.05)


def _buffer(n: int, seed: int = 0):
    """Transitions of x' = x + 0.1 [sin(x1) + a, -0.5 x0] (a smooth 2-D system)."""
    rng = np.random.default_rng(seed)
    obs = rng.uniform(-2, 2, (n, 2)).astype(np.float32)
    act = rng.uniform(-1, 1, (n, 1)).astype(np.float32)
    delta = 0.1 * np.stack([np.sin(obs[:, 1]) + act[:, 0], -0.5 * obs[:, 0]], -1)
    buf = replay.init(n + 10, acting.empty_transition(2, 1))
    t = acting.empty_transition(2, 1)
    batch = jax.tree.map(lambda v: jnp.broadcast_to(v, (n,) + v.shape), t)
    batch = batch.replace(obs=jnp.asarray(obs), action=jnp.asarray(act),
                          next_obs=jnp.asarray(obs + delta))
    return replay.add(buf, batch), obs, act, delta


@pytest.mark.parametrize("max_points", [128, 60])  # exact, then FITC with 60 inducing inputs
def test_gp_model_implements_the_protocol_and_learns_deltas(max_points):
    model = make_gp(2, 1, GPConfig(max_points=max_points, fit_steps=100))
    check_model(model, deep=True)
    buf, obs, act, delta = _buffer(110)
    state, metrics = jax.jit(model.fit)(model.init(jax.random.PRNGKey(0)), buf,
                                        jax.random.PRNGKey(1))
    assert not bool(metrics["nonfinite"])
    # Predictions at new points: the mean delta within a few % of the signal.
    test_obs, test_act, test_delta = _buffer(50, seed=7)[1:]
    step = jax.jit(model.step)
    out = step(state, jnp.asarray(test_obs)[None], jnp.asarray(test_act)[None], None, None)
    err = np.abs(np.asarray(out.next_obs[0]) - (test_obs + test_delta))
    assert err.max() < 0.02, err.max()
    assert float(metrics["train_loss"]) < 1e-4
    # Sampling adds the predictive spread, small here.
    noisy = step(state, jnp.asarray(test_obs)[None], jnp.asarray(test_act)[None],
                 jax.random.PRNGKey(2), None)
    assert 0 < np.abs(np.asarray(noisy.next_obs - out.next_obs)).max() < 0.1


def test_fit_gp_raises_the_marginal_likelihood():
    _, obs, act, delta = _buffer(80)
    x, y, mask = jnp.asarray(np.concatenate([obs, act], -1)), jnp.asarray(delta), jnp.ones(80)
    config = GPConfig(max_points=100, fit_steps=100)
    state, info = jax.jit(functools.partial(fit_gp, config))(make_gp(2, 1, config).init(None), x,
                                                             y, mask, jax.random.PRNGKey(0))

    def nll(hyper):  # per point and output, at PILCO's initial guess vs after the fit
        one = lambda h, y_o: neg_log_marginal(h, x, y_o, mask, config.jitter)
        return float(jnp.mean(jax.vmap(one, in_axes=(0, 1))(hyper, y))) / 80

    before, after = nll(initial_hyper(x, y, mask)), nll(state.posterior.hyper)
    assert after < before - 0.5, (before, after)
    assert abs(float(info["nll"]) - after) < 0.05  # the reported value (barrier ~0 here)


def test_pets_runs_a_test_sized_episode_with_the_gp():
    from mbjax.agents import pets
    from mbjax.agents.program import make_pure_train

    config = dataclasses.replace(pets.preset("point_mass", "test"), num_episodes=2)
    model = make_gp(2, 1, GPConfig(max_points=64, fit_steps=20))
    program = pets.make_program(config, pets.make_pets(config, model=model))
    final, metrics = jax.jit(make_pure_train(program))(jax.random.PRNGKey(0))
    assert bool(final.model.fitted)
    assert np.all(np.isfinite(np.asarray(metrics.episode_return)))
    assert float(metrics.model_holdout_mse[1]) < 1e-2


def test_greedy_variance_subset_covers_isolated_points_and_beats_random_fitc():
    """Pivoted Cholesky picks: distinct valid rows, every isolated point before a second row of
    a dense cluster, and (as FITC support) a closer fit than a uniform random subset on
    clustered data, where a random subset copies the clusters' density."""
    from mbjax.models.gp.inducing import greedy_variance_subset
    from mbjax.models.gp.model import subset_indices

    rng = np.random.default_rng(0)
    cluster = 0.01 * rng.normal(size=(190, 2))
    far = np.stack([np.linspace(-4.0, 4.0, 10), np.full(10, 3.0)], -1)
    x = jnp.asarray(np.concatenate([cluster, far, np.zeros((8, 2))]), jnp.float32)
    mask = jnp.asarray(np.r_[np.ones(200), np.zeros(8)], jnp.float32)  # 8 masked rows
    hyper = Hyper(jnp.zeros((2, 2)), jnp.zeros(2), jnp.full(2, -3.0))
    idx, used = jax.jit(greedy_variance_subset, static_argnums=3)(x, mask, hyper, 12)
    idx = np.asarray(idx)
    assert len(set(idx.tolist())) == 12 and np.all(idx < 200) and np.all(np.asarray(used) == 1)
    assert set(range(190, 200)) <= set(idx.tolist())  # all ten isolated points
    assert np.sum(idx < 190) == 2  # the cluster is one point's worth, plus one

    # FITC on the picks vs on a random subset: y varies along the spread-out points.
    y = jnp.stack([jnp.sin(x[:, 0]), jnp.cos(x[:, 0])], -1) * mask[:, None]
    hyper = Hyper(jnp.zeros((2, 2)), jnp.zeros(2), jnp.full(2, -3.0))

    def fit_error(sub, sub_mask):
        post = fitc_posterior(hyper, x, y, mask, x[sub], sub_mask, 1e-4)
        return float(jnp.sum(mask[:, None] * (predict(post, x)[0] - y) ** 2))

    greedy = fit_error(idx, used)
    randoms = [fit_error(*subset_indices(mask, 12, jax.random.PRNGKey(k))) for k in range(5)]
    assert greedy < 0.1 * min(randoms), (greedy, randoms)
