"""Ensemble dynamics models: config validation, shapes, fitting known dynamics, uncertainty."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mbjax import replay
from mbjax.models import EnsembleConfig, fit_normalizer, make_ensemble, raise_if_nonfinite
from mbjax.types import Transition

DT = 0.05


def pendulum_step(obs: np.ndarray, act: np.ndarray) -> np.ndarray:
    """Semi-implicit Euler pendulum: obs = [theta, omega], torque = 2 * action."""
    th, w = obs[..., 0], obs[..., 1]
    w2 = w + DT * (-9.8 * np.sin(th) - 0.1 * w + 2.0 * act[..., 0])
    th2 = th + DT * w2
    return np.stack([th2, w2], axis=-1).astype(np.float32)


def pendulum_reward(obs: np.ndarray) -> np.ndarray:
    return -(obs[..., 0] ** 2 + 0.1 * obs[..., 1] ** 2).astype(np.float32)


def make_pendulum_data(n: int, seed: int, scale: float = 1.0) -> Transition:
    rng = np.random.default_rng(seed)
    obs = (rng.uniform([-np.pi, -4.0], [np.pi, 4.0], size=(n, 2)) * scale).astype(np.float32)
    act = rng.uniform(-1.0, 1.0, size=(n, 1)).astype(np.float32)
    nxt = pendulum_step(obs, act)
    return Transition(
        obs=jnp.asarray(obs),
        action=jnp.asarray(act),
        reward=jnp.asarray(pendulum_reward(obs)),
        next_obs=jnp.asarray(nxt),
        terminated=jnp.asarray((np.abs(obs[:, 0]) > 2.5).astype(np.float32)),
        truncated=jnp.zeros(obs.shape[0]),
    )


def counting(fn):
    """fn wrapped to count how often it is traced; returns (wrapped, counter list)."""
    count = [0]

    def wrapped(*args, **kwargs):
        count[0] += 1
        return fn(*args, **kwargs)

    return wrapped, count


def buffer_from(data: Transition, capacity: int) -> replay.ReplayBuffer:
    buf = replay.init(capacity, jax.tree_util.tree_map(lambda x: x[0], data))
    return replay.add(buf, data)


SMALL = dict(ensemble_size=5, hidden_sizes=(64, 64), batch_size=64)


# ---------------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    "field,value",
    [
        ("ensemble_size", 0),
        ("ensemble_size", 2.5),
        ("hidden_sizes", ()),
        ("hidden_sizes", [200, 200]),
        ("hidden_sizes", (200, -1)),
        ("activation", "sigmoidish"),
        ("num_elites", 6),
        ("num_elites", 0),
        ("learning_rate", 0.0),
        ("weight_decays", (1e-4, 1e-4)),
        ("weight_decays", -1.0),
        ("batch_size", 0),
        ("holdout_ratio", 1.0),
        ("holdout_ratio", -0.1),
        ("max_epochs", 0),
        ("patience", 0),
        ("improvement_threshold", 1.5),
        ("holdout_metric", "mae"),
        ("logvar_penalty", -1.0),
        ("nll_beta", -0.1),
        ("nll_beta", 1.5),
    ],
)
def test_bad_config_raises_naming_field(field, value):
    with pytest.raises(ValueError, match=field):
        EnsembleConfig(**{field: value})


def test_config_misc_validation():
    with pytest.raises(ValueError, match="holdout_metric"):
        EnsembleConfig(probabilistic=False, holdout_metric="nll")
    with pytest.raises(ValueError, match="min_logvar_init"):
        EnsembleConfig(min_logvar_init=1.0, max_logvar_init=0.5)
    with pytest.raises(ValueError, match="obs_size"):
        make_ensemble(EnsembleConfig(), 0, 1)
    cfg = EnsembleConfig(hidden_sizes=(8, 8), weight_decays=(1.0, 2.0, 3.0))
    assert cfg.layer_weight_decays == (1.0, 2.0, 3.0)
    assert EnsembleConfig(weight_decays=0.5).layer_weight_decays == (0.5,) * 5
    assert EnsembleConfig(ensemble_size=7, num_elites=5).elites_count == 5
    assert EnsembleConfig(ensemble_size=7).elites_count == 7


# ---------------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("probabilistic", [True, False])
def test_shapes_of_all_entry_points(probabilistic):
    cfg = EnsembleConfig(
        ensemble_size=3,
        hidden_sizes=(16, 16),
        probabilistic=probabilistic,
        predict_reward=True,
        predict_termination=True,
    )
    model = make_ensemble(cfg, obs_size=4, action_size=2)
    st = model.init(jax.random.PRNGKey(0))
    assert model.input_size == 6 and model.target_size == 5
    obs = jnp.ones((7, 5, 4))
    act = jnp.ones((7, 5, 2))
    pred = jax.jit(model.apply)(st.params, st.normalizer, obs, act)
    chex.assert_shape(pred.mean, (3, 7, 5, 4))
    chex.assert_shape(pred.reward, (3, 7, 5))
    chex.assert_shape(pred.termination_logit, (3, 7, 5))
    if probabilistic:
        chex.assert_shape(pred.logvar, (3, 7, 5, 4))
        chex.assert_shape(pred.reward_logvar, (3, 7, 5))
        # Soft bounds hold: logvar inside (min_logvar, max_logvar).
        assert float(pred.logvar.max()) < cfg.max_logvar_init
        assert float(pred.logvar.min()) > cfg.min_logvar_init
    else:
        assert pred.logvar is None and pred.reward_logvar is None
    # Shapes of the other entry points without compiling them.
    pm = jax.eval_shape(
        model.apply_members, st.params, st.normalizer, jnp.ones((3, 9, 4)), jnp.ones((3, 9, 2))
    )
    chex.assert_shape(pm.mean, (3, 9, 4))
    raw = jax.eval_shape(model.predict, st, obs, act)
    chex.assert_shape(raw.next_obs_mean, (3, 7, 5, 4))
    chex.assert_shape(raw.termination_prob, (3, 7, 5))
    step = jax.eval_shape(
        model.step_members,
        st.params,
        st.normalizer,
        jnp.ones((3, 9, 4)),
        jnp.ones((3, 9, 2)),
        jax.random.PRNGKey(1),
    )
    chex.assert_shape(step.next_obs, (3, 9, 4))
    chex.assert_shape(step.reward, (3, 9))
    s = jax.eval_shape(model.sample_next, st, obs, act, jax.random.PRNGKey(2))
    chex.assert_shape(s.next_obs, (7, 5, 4))
    chex.assert_shape(s.reward, (7, 5))
    with pytest.raises(ValueError, match="leading axis E=3"):
        jax.eval_shape(
            model.apply_members, st.params, st.normalizer, jnp.ones((2, 9, 4)), jnp.ones((2, 9, 2))
        )


def test_sample_next_uses_the_requested_member():
    cfg = EnsembleConfig(ensemble_size=4, hidden_sizes=(16,), probabilistic=False)
    model = make_ensemble(cfg, 3, 1)
    st = model.init(jax.random.PRNGKey(3))
    obs = jax.random.normal(jax.random.PRNGKey(4), (6, 3))
    act = jnp.zeros((6, 1))
    idx = jnp.array([0, 1, 2, 3, 2, 1])
    got = jax.jit(model.sample_next)(st, obs, act, jax.random.PRNGKey(5), idx).next_obs
    allm = jax.jit(model.predict)(st, obs, act).next_obs_mean  # [E, 6, 3]
    np.testing.assert_allclose(got, allm[idx, jnp.arange(6)], rtol=1e-5, atol=1e-6)


def test_masked_normalizer_ignores_invalid_rows():
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, size=(50, 3)).astype(np.float32)
    x[30:] = 1e6  # garbage in unfilled slots
    x[:, 2] = 5.0  # constant feature -> std 1, not 0
    n = fit_normalizer(jnp.asarray(x), jnp.arange(50) < 30)
    np.testing.assert_allclose(n.mean, x[:30].mean(0), rtol=1e-5)
    np.testing.assert_allclose(n.std[:2], x[:30, :2].std(0), rtol=1e-4)
    assert float(n.std[2]) == 1.0


# ---------------------------------------------------------------------------------- fitting


@pytest.fixture(scope="module")
def pendulum_fit():
    """A 5 x 2x64 probabilistic ensemble with reward and termination heads on 3000 transitions."""
    cfg = EnsembleConfig(
        **SMALL,
        predict_reward=True,
        predict_termination=True,
        num_elites=3,
        max_epochs=60,
        patience=8,
        weight_decays=(2.5e-5, 5e-5, 1e-4),
    )
    model = make_ensemble(cfg, 2, 1)
    data = make_pendulum_data(3000, seed=0)
    fit = jax.jit(model.fit)
    st, metrics = fit(
        model.init(jax.random.PRNGKey(0)), buffer_from(data, 4096), jax.random.PRNGKey(1)
    )
    return model, st, metrics


def test_ensemble_fits_pendulum_dynamics(pendulum_fit):
    model, st, metrics = pendulum_fit
    test = make_pendulum_data(1000, seed=123)
    pred = model.predict(st, test.obs, test.action)
    true_delta = np.asarray(test.next_obs - test.obs)
    pred_delta = np.asarray(pred.next_obs_mean - test.obs[None])  # [E, n, 2]
    # Normalized RMSE of every member's state delta on fresh data: < 5% of the delta's std
    nrmse = np.sqrt(np.mean((pred_delta - true_delta) ** 2, axis=1)) / true_delta.std(0)
    assert nrmse.shape == (5, 2)
    assert nrmse.max() < 0.05, nrmse
    # Reward head: RMSE < 5% of the reward std; termination head: > 97% accurate.
    true_r = np.asarray(test.reward)
    r_rmse = np.sqrt(np.mean((np.asarray(pred.reward_mean) - true_r) ** 2, axis=1))
    assert r_rmse.max() < 0.05 * true_r.std(), r_rmse
    acc = np.mean((np.asarray(pred.termination_prob) > 0.5) == np.asarray(test.terminated)[None])
    assert acc > 0.97, acc
    # Metrics: per member, holdout = 20% of the data, elites are the best holdout members.
    assert int(metrics["num_holdout"]) == 600 and int(metrics["num_train"]) == 2400
    for k in ("train_mse", "holdout_mse", "train_nll", "holdout_nll", "holdout_term_bce"):
        chex.assert_shape(metrics[k], (5,))
    assert not bool(metrics["nonfinite"])
    np.testing.assert_array_equal(st.elites, np.argsort(np.asarray(st.holdout_score))[:3])
    np.testing.assert_allclose(st.holdout_score, metrics["holdout_mse"], rtol=1e-4)
    # The kept snapshot of each member is the one recorded at its best epoch.
    hist = np.asarray(metrics["holdout_history"])
    best_epoch = np.asarray(metrics["best_epoch"])
    assert (best_epoch >= 1).all()
    np.testing.assert_allclose(
        hist[best_epoch - 1, np.arange(5)], metrics["holdout_mse"], rtol=1e-4
    )
    assert np.all(metrics["holdout_mse"] <= np.nanmin(hist, axis=0) * 1.011)


def test_epistemic_disagreement_grows_far_from_data():
    cfg = EnsembleConfig(**SMALL, probabilistic=False, max_epochs=40, patience=None)
    model = make_ensemble(cfg, 2, 1)
    rng = np.random.default_rng(1)
    obs = rng.uniform(-1.0, 1.0, size=(1500, 2)).astype(np.float32)
    act = rng.uniform(-1.0, 1.0, size=(1500, 1)).astype(np.float32)
    nxt = pendulum_step(obs, act)
    data = Transition(
        obs=jnp.asarray(obs),
        action=jnp.asarray(act),
        reward=jnp.zeros(1500),
        next_obs=jnp.asarray(nxt),
        terminated=jnp.zeros(1500),
        truncated=jnp.zeros(1500),
    )
    st, _ = jax.jit(model.fit)(model.init(jax.random.PRNGKey(2)), data, jax.random.PRNGKey(3))

    def disagreement(o, a):
        mean = model.predict(st, jnp.asarray(o), jnp.asarray(a)).next_obs_mean
        return float(jnp.mean(jnp.std(mean, axis=0)))

    inside = disagreement(obs[:300], act[:300])
    far_obs = rng.uniform(4.0, 6.0, size=(300, 2)) * rng.choice([-1.0, 1.0], size=(300, 2))
    far = disagreement(far_obs.astype(np.float32), act[:300])
    assert far > 10.0 * inside, (far, inside)


def test_probabilistic_head_recovers_noise_level():
    sigma = 0.1
    rng = np.random.default_rng(4)
    n = 4000
    obs = rng.uniform(-2.0, 2.0, size=(n, 1)).astype(np.float32)
    act = rng.uniform(-1.0, 1.0, size=(n, 1)).astype(np.float32)
    nxt = obs + 0.3 * np.sin(2.0 * obs) + 0.2 * act + sigma * rng.normal(size=(n, 1))
    data = Transition(
        obs=jnp.asarray(obs),
        action=jnp.asarray(act),
        reward=jnp.zeros(n),
        next_obs=jnp.asarray(nxt.astype(np.float32)),
        terminated=jnp.zeros(n),
        truncated=jnp.zeros(n),
    )
    cfg = EnsembleConfig(**SMALL, probabilistic=True, max_epochs=40, patience=None)
    model = make_ensemble(cfg, 1, 1)
    st, _ = jax.jit(model.fit)(model.init(jax.random.PRNGKey(5)), data, jax.random.PRNGKey(6))
    test_obs = jnp.linspace(-1.8, 1.8, 200)[:, None]
    pred = model.predict(st, test_obs, jnp.zeros((200, 1)))
    std = np.sqrt(np.asarray(pred.next_obs_var))  # [E, 200, 1]
    est = float(np.mean(std))
    assert abs(est - sigma) < 0.2 * sigma, est
    # And the means still follow the noiseless function.
    true_mean = test_obs + 0.3 * jnp.sin(2.0 * test_obs)
    assert float(jnp.max(jnp.abs(pred.next_obs_mean.mean(0) - true_mean))) < 0.05


def _point_mass_transitions(x, v, a) -> Transition:
    """Point-mass steps (dt 0.1) with reward -(x' - 1)^2 - 0.01 a^2 (as the point_mass task)."""
    v2 = v + 0.1 * a[:, 0]
    x2 = x + 0.1 * v2
    r = -((x2 - 1.0) ** 2) - 0.01 * a[:, 0] ** 2
    f = lambda z: jnp.asarray(z, jnp.float32)  # noqa: E731
    return Transition(
        f(np.stack([x, v], -1)), f(a), f(r), f(np.stack([x2, v2], -1)), jnp.zeros(len(x)),
        jnp.zeros(len(x)),
    )


def test_warm_started_fit_learns_a_reward_whose_range_grew():
    """Regression (PETS with a learned reward on point_mass): a model first fitted on random
    steps near the origin (reward std ~0.3), then refitted on data reaching |x| = 10 (reward std
    ~29). With the plain NLL the warm-started reward head stayed at RMSE ~24 (the new points got
    a large variance instead of a better mean; from scratch it reached ~3). beta-NLL fits it."""
    rng = np.random.default_rng(0)
    n = 64
    narrow = _point_mass_transitions(
        rng.uniform(-0.3, 0.3, n), rng.uniform(-0.5, 0.5, n), rng.uniform(-1, 1, (n, 1))
    )
    wide = _point_mass_transitions(
        rng.uniform(-10, 10, n), rng.uniform(-4, 4, n), rng.uniform(-1, 1, (n, 1))
    )
    both = jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a, b]), narrow, wide)
    cfg = EnsembleConfig(
        ensemble_size=2, hidden_sizes=(32, 32), learning_rate=3e-3, batch_size=32,
        max_epochs=40, patience=None, predict_reward=True, nll_beta=1.0,
    )
    model = make_ensemble(cfg, 2, 1)
    fit = jax.jit(model.fit)
    warm, _ = fit(model.init(jax.random.PRNGKey(0)), narrow, jax.random.PRNGKey(10))
    st, metrics = fit(warm, both, jax.random.PRNGKey(20))
    pred = model.predict(st, both.obs, both.action)
    err = np.asarray(pred.reward_mean) - np.asarray(both.reward)[None]
    rmse = np.sqrt(np.mean(np.square(err), axis=1))  # [E]
    std = float(np.std(np.asarray(both.reward)))
    assert std > 20.0 and float(np.std(np.asarray(narrow.reward))) < 1.0
    assert np.all(rmse < 0.25 * std), (rmse, std)
    # The reported NLL stays the plain Gaussian NLL (finite, comparable across nll_beta).
    assert np.all(np.isfinite(np.asarray(metrics["train_nll"])))


def test_growing_buffer_never_retraces():
    cfg = EnsembleConfig(ensemble_size=3, hidden_sizes=(16,), batch_size=32, max_epochs=3)
    model = make_ensemble(cfg, 2, 1)
    counted, traces = counting(model.fit)
    fit = jax.jit(counted)
    data = make_pendulum_data(1000, seed=7)
    buf = replay.init(512, jax.tree_util.tree_map(lambda x: x[0], data))
    st = model.init(jax.random.PRNGKey(0))
    start = 0
    for i, n_new in enumerate((50, 150, 300, 400)):  # the last add wraps the ring buffer
        batch = jax.tree_util.tree_map(lambda x, s=start, k=n_new: x[s : s + k], data)
        start += n_new
        buf = replay.add(buf, batch)
        st, metrics = fit(st, buf, jax.random.PRNGKey(i))
        size = int(buf.size)
        assert int(metrics["num_holdout"]) == int(np.floor(0.2 * size))
        assert int(metrics["num_train"]) == size - int(np.floor(0.2 * size))
        assert np.isfinite(np.asarray(metrics["holdout_mse"])).all()
    assert int(buf.size) == 512
    # Arrays plus a traced size are accepted too (same compiled program shape-wise).
    assert traces[0] == 1
    counted2, traces2 = counting(model.fit)
    fit2 = jax.jit(counted2)
    for size in (40, 90):
        _, m = fit2(st, data, jax.random.PRNGKey(9), jnp.asarray(size))
        assert int(m["num_train"]) == size - int(np.floor(0.2 * size))
    assert traces2[0] == 1


def test_early_stopping_and_snapshot_logic():
    # A learning rate too small to improve the holdout by 1%: training stops after `patience`
    # epochs and every member keeps its incoming params exactly.
    cfg = EnsembleConfig(
        ensemble_size=3,
        hidden_sizes=(16,),
        batch_size=32,
        max_epochs=50,
        patience=3,
        learning_rate=1e-9,
    )
    model = make_ensemble(cfg, 2, 1)
    st0 = model.init(jax.random.PRNGKey(0))
    st, m = jax.jit(model.fit)(st0, make_pendulum_data(300, 1), jax.random.PRNGKey(1))
    assert int(m["epochs"]) == 3
    np.testing.assert_array_equal(m["best_epoch"], [0, 0, 0])
    chex.assert_trees_all_equal(st.params, st0.params)
    assert np.isnan(np.asarray(m["holdout_history"])[3:]).all()


def test_weight_decay_and_bootstrap():
    data = make_pendulum_data(400, 2)

    def weight_norm(wd, bootstrap):
        cfg = EnsembleConfig(
            ensemble_size=3,
            hidden_sizes=(32,),
            batch_size=32,
            max_epochs=10,
            patience=None,
            weight_decays=wd,
            bootstrap=bootstrap,
            probabilistic=False,
            holdout_ratio=0.0,
        )
        model = make_ensemble(cfg, 2, 1)
        st, m = jax.jit(model.fit)(model.init(jax.random.PRNGKey(0)), data, jax.random.PRNGKey(1))
        assert np.isfinite(np.asarray(m["train_mse"])).all()
        assert int(m["epochs"]) == 10  # no patience: every epoch runs
        assert int(m["num_holdout"]) == 0 and int(m["num_train"]) == 400
        return sum(float(jnp.sum(layer["w"] ** 2)) for layer in st.params["layers"]), m

    plain, m_plain = weight_norm(0.0, False)
    decayed, _ = weight_norm(0.3, False)
    assert decayed < 0.5 * plain, (decayed, plain)
    _, m_boot = weight_norm(0.0, True)
    # Bootstrap resamples (with replacement) change each member's data, hence its fit.
    assert not np.allclose(m_boot["train_mse"], m_plain["train_mse"])


def _trees_equal(a, b) -> bool:
    return all(np.array_equal(np.asarray(x), np.asarray(y), equal_nan=True)
               for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b),
                               strict=True))


def _poison(data: Transition, nan_row: int, inf_row: int) -> Transition:
    """A NaN in next_obs of `nan_row`, an Inf reward in `inf_row` (the model has a reward head)."""
    return data.replace(next_obs=data.next_obs.at[nan_row, 0].set(jnp.nan),
                        reward=data.reward.at[inf_row].set(jnp.inf))


NONFINITE_CFG = dict(ensemble_size=2, hidden_sizes=(16,), batch_size=32, max_epochs=5,
                     predict_reward=True)


def test_nonfinite_rows_are_masked_as_if_absent():
    # One NaN row and one Inf row at the end of the data: the fit equals, bit for bit, the fit
    # of the same data with `size` excluding them (same key, same capacity).
    model = make_ensemble(EnsembleConfig(**NONFINITE_CFG), 2, 1)
    data = make_pendulum_data(200, 3)
    st0 = model.init(jax.random.PRNGKey(0))
    fit = jax.jit(model.fit)
    st, m = fit(st0, _poison(data, 198, 199), jax.random.PRNGKey(1))
    assert int(m["num_nonfinite_rows"]) == 2 and int(m["first_nonfinite_row"]) == 198
    assert not bool(m["nonfinite"])
    raise_if_nonfinite(m)  # nothing to raise: the bad rows were masked
    assert int(m["num_train"]) + int(m["num_holdout"]) == 198
    clean, m_clean = fit(st0, data, jax.random.PRNGKey(1), jnp.asarray(198))
    assert _trees_equal(st, clean)
    assert int(m_clean["num_nonfinite_rows"]) == 0 and int(m_clean["first_nonfinite_row"]) == -1


def test_nonfinite_rows_in_the_middle_give_the_fit_without_them():
    # Bad rows anywhere: a finite model whose predictions match a fit on the data without
    # those rows (a different holdout split, so close rather than equal).
    cfg = EnsembleConfig(**{**NONFINITE_CFG, "hidden_sizes": (64, 64), "max_epochs": 60})
    model = make_ensemble(cfg, 2, 1)
    data = make_pendulum_data(600, 4)
    keep = np.setdiff1d(np.arange(600), [17, 301])
    st0 = model.init(jax.random.PRNGKey(0))
    fit = jax.jit(model.fit)
    st, m = fit(st0, _poison(data, 17, 301), jax.random.PRNGKey(1))
    ref, _ = fit(st0, jax.tree_util.tree_map(lambda x: x[keep], data), jax.random.PRNGKey(1))
    assert int(m["num_nonfinite_rows"]) == 2 and int(m["first_nonfinite_row"]) == 17
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree_util.tree_leaves(st))
    test = make_pendulum_data(300, 5)
    a = model.predict(st, test.obs, test.action)
    b = model.predict(ref, test.obs, test.action)
    for got, ref_pred, true in ((a.next_obs_mean, b.next_obs_mean, test.next_obs),
                                (a.reward_mean, b.reward_mean, test.reward)):
        got, ref_pred = np.mean(got, 0), np.mean(ref_pred, 0)  # member means
        err, ref_err = (float(np.sqrt(np.mean((p - np.asarray(true)) ** 2)))
                        for p in (got, ref_pred))
        gap = float(np.sqrt(np.mean((got - ref_pred) ** 2)))
        # Both fit the truth about equally well, and they differ by a few % of its spread.
        spread = float(np.std(np.asarray(true)))
        assert err < 1.5 * ref_err and gap < 0.05 * spread, (err, ref_err, gap, spread)


def test_all_rows_nonfinite_return_the_model_unchanged():
    model = make_ensemble(EnsembleConfig(**NONFINITE_CFG), 2, 1)
    data = make_pendulum_data(100, 3)
    st0 = model.init(jax.random.PRNGKey(0))
    st, m = jax.jit(model.fit)(st0, data.replace(obs=data.obs * jnp.nan), jax.random.PRNGKey(1))
    assert bool(m["nonfinite"]) and int(m["num_nonfinite_rows"]) == 100
    assert _trees_equal(st, st0)
    with pytest.raises(FloatingPointError, match="100 row"):
        raise_if_nonfinite(m)


def test_diverging_fit_is_reported_and_keeps_finite_snapshots_and_optimizer():
    # A learning rate that blows the loss up: `nonfinite`, yet params, normalizer and Adam
    # state stay finite (each member kept its best finite snapshot; NaN moments are dropped).
    cfg = EnsembleConfig(ensemble_size=2, hidden_sizes=(8,), batch_size=32, max_epochs=3,
                         learning_rate=1e30, probabilistic=False)
    model = make_ensemble(cfg, 2, 1)
    st0 = model.init(jax.random.PRNGKey(0))
    st, m = jax.jit(model.fit)(st0, make_pendulum_data(100, 3), jax.random.PRNGKey(1))
    assert bool(m["nonfinite"]) and int(m["num_nonfinite_rows"]) == 0
    with pytest.raises(FloatingPointError, match="NaN"):
        raise_if_nonfinite(m)
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree_util.tree_leaves(st))


def test_masking_keeps_one_trace_and_a_vmap():
    model = make_ensemble(EnsembleConfig(**NONFINITE_CFG), 2, 1)
    data = make_pendulum_data(100, 3)
    st0 = model.init(jax.random.PRNGKey(0))
    chex.clear_trace_counter()
    fit = jax.jit(chex.assert_max_traces(model.fit, n=1))
    for bad in ((1, 2), (50, 60), (98, 99)):
        _, m = fit(st0, _poison(data, *bad), jax.random.PRNGKey(1))
        assert int(m["num_nonfinite_rows"]) == 2
    _, m = fit(st0, data, jax.random.PRNGKey(1))
    assert int(m["num_nonfinite_rows"]) == 0


def test_learning_rate_is_a_leaf_a_grid_vmaps_with_one_trace():
    from mbjax.models import set_learning_rate

    cfg = EnsembleConfig(ensemble_size=2, hidden_sizes=(16,), batch_size=32, max_epochs=3,
                         patience=None, learning_rate=1e-3)
    model = make_ensemble(cfg, 2, 1)
    buf = buffer_from(make_pendulum_data(300, seed=3), 300)
    st = model.init(jax.random.PRNGKey(0))
    chex.clear_trace_counter()
    fit = jax.jit(chex.assert_max_traces(model.fit, n=1))
    lrs = (1e-4, 1e-3, 1e-2)
    alone = [fit(set_learning_rate(st, lr), buf, jax.random.PRNGKey(1)) for lr in lrs]
    # A different learning rate changes the fit (it is really used) ...
    w = [np.asarray(a[0].params["layers"][0]["w"]) for a in alone]
    assert not np.allclose(w[0], w[2])
    # ... and a vmapped grid over it equals the points run one at a time.
    grid = jax.vmap(lambda lr: set_learning_rate(st, lr))(jnp.asarray(lrs))
    batched, _ = jax.jit(jax.vmap(model.fit, in_axes=(0, None, None)))(
        grid, buf, jax.random.PRNGKey(1))
    for i in range(3):
        np.testing.assert_allclose(batched.params["layers"][0]["w"][i], w[i], rtol=2e-4,
                                   atol=1e-6)
    check = EnsembleConfig(learning_rate=1e-3)
    assert float(model.init(jax.random.PRNGKey(0)).opt_state.hyperparams["learning_rate"]) == (
        pytest.approx(check.learning_rate))
