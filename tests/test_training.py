"""The fit's internals (mbjax.models.training): chunked evaluation and the tracked holdout metrics.

The network here is a plain stacked MLP (mbjax.models.mlp) behind a hand-built FitSetup, so these
tests do not depend on the ensemble's prediction path.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mbjax import replay
from mbjax.models import EnsembleConfig, mlp
from mbjax.models import training as T
from mbjax.models.normalizer import init_normalizer
from mbjax.models.state import ModelNormalizer, ModelState
from mbjax.types import Transition

OBS, ACT = 3, 2


def _setup(cfg: EnsembleConfig) -> T.FitSetup:
    """A FitSetup for a probabilistic E x MLP whose log-variance is its raw output, clipped
    (not the ensemble's soft bounds): enough for the fit's bookkeeping."""
    d = OBS

    def features(obs, action):
        return jnp.concatenate([obs, action], axis=-1)

    def forward(params, x, shared):
        out = mlp.apply_stacked_mlp(params["layers"], x, jax.nn.swish, shared)
        return out[..., :d], jnp.clip(out[..., d:], -5.0, 2.0), None

    return T.FitSetup(cfg, optax.adam(cfg.learning_rate), features, forward, OBS, ACT, d)


def _init(cfg: EnsembleConfig, setup: T.FitSetup) -> ModelState:
    sizes = [OBS + ACT, *cfg.hidden_sizes, 2 * OBS]
    params = {
        "layers": mlp.init_stacked_mlp(jax.random.PRNGKey(0), cfg.ensemble_size, sizes),
        "max_logvar": jnp.zeros((cfg.ensemble_size, OBS)),
        "min_logvar": jnp.full((cfg.ensemble_size, OBS), -5.0),
    }
    return ModelState(
        params=params,
        normalizer=ModelNormalizer(init_normalizer(OBS + ACT), init_normalizer(OBS)),
        opt_state=setup.optimizer.init(params),
        elites=jnp.arange(cfg.elites_count, dtype=jnp.int32),
        holdout_score=jnp.full((cfg.ensemble_size,), jnp.inf),
    )


def _buffer(n: int, capacity: int) -> replay.ReplayBuffer:
    rng = np.random.default_rng(0)
    obs = rng.standard_normal((n, OBS)).astype(np.float32)
    act = rng.uniform(-1, 1, (n, ACT)).astype(np.float32)
    nxt = obs + 0.1 * np.sin(obs) * act[:, :1] + 0.01 * rng.standard_normal((n, OBS))
    data = Transition(
        obs=jnp.asarray(obs), action=jnp.asarray(act), reward=jnp.zeros(n),
        next_obs=jnp.asarray(nxt, jnp.float32), terminated=jnp.zeros(n), truncated=jnp.zeros(n),
    )
    buf = replay.init(capacity, jax.tree_util.tree_map(lambda x: x[0], data))
    return replay.add(buf, data)


def test_chunked_evaluation_equals_one_full_pass_and_skips_rows_after_the_prefix():
    cfg = EnsembleConfig(ensemble_size=3, hidden_sizes=(16, 16), max_holdout=5000)
    setup = _setup(cfg)
    state = _init(cfg, setup)
    n_filled, cap = 1500, 2000
    k = jax.random.PRNGKey(1)
    d = T.split_data(setup, _buffer(n_filled, cap), None, k, k)
    assert int(d.n_hold) == 300 and d.hold_idx.shape == (2000,)
    for idx, w in ((d.hold_idx, d.hold_w), (d.train_idx, d.train_w)):
        n = int(jnp.sum(w))
        rows = idx[:n]
        mean, logvar, logit = setup.forward(state.params, d.x[rows], shared=True)
        full = T.gaussian_losses(mean, logvar, logit, d.y[rows][None], d.terminated[rows][None],
                                 jnp.ones(n))
        got = T.evaluate(setup, state.params, d, idx, w)
        assert set(got) == {"mse", "nll"}
        for name in got:
            np.testing.assert_allclose(got[name], full[name], rtol=2e-6)
    # Rows that only chunks after the weighted prefix point at are never run: NaN there (which
    # the fit never stores: masked rows are zeros) does not reach the result.
    chunks = -(-int(d.n_hold) // T.EVAL_CHUNK)
    unused = d.hold_idx[chunks * T.EVAL_CHUNK:]
    poisoned = d._replace(x=d.x.at[unused].set(jnp.nan))
    got = T.evaluate(setup, state.params, poisoned, d.hold_idx, d.hold_w)
    assert all(bool(jnp.all(jnp.isfinite(v))) for v in got.values())


def test_reported_holdout_and_train_metrics_are_those_of_the_returned_snapshot():
    cfg = EnsembleConfig(ensemble_size=3, hidden_sizes=(16, 16), batch_size=64, max_epochs=6,
                         patience=None, learning_rate=3e-3)
    setup = _setup(cfg)
    state0 = _init(cfg, setup)
    buf = _buffer(900, 1000)
    key = jax.random.PRNGKey(3)
    state, metrics = jax.jit(lambda s, b, k: T.run_fit(setup, s, b, k))(state0, buf, key)
    k_split, k_boot, _ = jax.random.split(key, 3)
    d = T.split_data(setup, buf, None, k_split, k_boot)
    hold = T.evaluate(setup, state.params, d, d.hold_idx, d.hold_w)
    train = T.evaluate(setup, state.params, d, d.train_idx, d.train_w)
    for name in ("mse", "nll"):
        np.testing.assert_allclose(metrics[f"holdout_{name}"], hold[name], rtol=1e-5)
        np.testing.assert_allclose(metrics[f"train_{name}"], train[name], rtol=1e-5)
    np.testing.assert_array_equal(metrics["holdout_mse"], state.holdout_score)
    # The snapshot is each member's best epoch (some epoch >= 1 here: the fit learns).
    best = np.asarray(metrics["best_epoch"])
    assert (best >= 1).all()
    history = np.asarray(metrics["holdout_history"])
    np.testing.assert_array_equal(history[best - 1, np.arange(3)], metrics["holdout_mse"])
