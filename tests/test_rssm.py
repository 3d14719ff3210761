"""RSSM world model (mbjax.models.rssm): transforms, latent distributions, KL balancing with free
bits, shapes (vectors and 64x64 images, Gaussian and categorical), the model protocol, a short
fit on cartpole_swingup, and a learning rate that changes without recompiling.

Shapes are checked with jax.eval_shape (tracing, no compilation) to keep this file fast; only
the fit test compiles."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mbjax import acting, envs, replay
from mbjax.models import check_model
from mbjax.models.rssm import (
    RSSMConfig,
    kl_balance,
    make_rssm,
    sequences_to_batch,
    symexp,
    symlog,
    twohot,
    twohot_decode,
)
from mbjax.models.rssm import latent as lat
from mbjax.models.rssm.transforms import bins

SMALL = dict(deter=16, stoch=4, hidden=16, layers=1, batch_size=2, seq_len=4, fit_steps=2)


def test_symlog_symexp_round_trip():
    x = jnp.array([-1e4, -20.0, -1.0, -1e-3, 0.0, 1e-3, 0.5, 3.0, 1e4])
    np.testing.assert_allclose(symexp(symlog(x)), x, rtol=1e-5, atol=1e-6)
    assert float(symlog(jnp.array(0.0))) == 0.0


def test_twohot_round_trip_and_weights():
    b = bins(255, 20.0)
    x = jnp.array([-20.0, -7.3, -0.01, 0.0, 0.123, 5.0, 19.99, 20.0])
    enc = twohot(x, b)
    np.testing.assert_allclose(enc.sum(-1), 1.0, rtol=1e-6)
    assert int(jnp.max(jnp.sum(enc > 0, -1))) <= 2
    np.testing.assert_allclose(twohot_decode(enc, b), x, atol=1e-5)
    # Outside the bins: clipped to the end bins.
    np.testing.assert_allclose(twohot_decode(twohot(jnp.array([-50.0, 50.0]), b), b),
                               [-20.0, 20.0], atol=1e-5)


def test_unimix_keeps_every_class_probability():
    config = RSSMConfig(stoch=3, classes=8, unimix=0.01)
    raw = jnp.array([[1e3, -1e3] * 12]) * jnp.arange(1, 25)  # saturated softmax
    probs = jnp.exp(lat.dist_stats(config, raw))
    assert probs.shape == (1, 3, 8)
    assert float(probs.min()) >= 0.01 / 8 * (1 - 1e-5)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)


def _gaussian_stats(mean, std):
    return jnp.concatenate([jnp.asarray(mean), jnp.asarray(std)], -1)


def test_kl_balance_free_bits_by_hand():
    config = RSSMConfig(stoch=2, classes=0, free_bits=1.0)
    prior = _gaussian_stats([0.0, 0.0], [1.0, 1.0])
    # KL(N(m, s) || N(0, 1)) per dim = log(1/s) + (s^2 + m^2) / 2 - 1/2.
    for mean, std in (([0.1, -0.2], [1.0, 0.9]), ([2.0, -1.5], [0.5, 2.0])):
        m, s = np.array(mean), np.array(std)
        by_hand = float(np.sum(-np.log(s) + (s**2 + m**2) / 2 - 0.5))
        post = _gaussian_stats(mean, std)
        terms = kl_balance(config, post, prior)
        np.testing.assert_allclose(terms.kl, by_hand, rtol=1e-5)
        np.testing.assert_allclose(terms.dyn, max(1.0, by_hand), rtol=1e-5)
        np.testing.assert_allclose(terms.rep, max(1.0, by_hand), rtol=1e-5)
        # dyn trains only the prior, rep only the posterior; below free bits neither moves.
        g_dyn = jax.grad(lambda po, pr: kl_balance(config, po, pr).dyn, argnums=(0, 1))(post, prior)
        g_rep = jax.grad(lambda po, pr: kl_balance(config, po, pr).rep, argnums=(0, 1))(post, prior)
        assert float(jnp.abs(g_dyn[0]).max()) == 0.0 and float(jnp.abs(g_rep[1]).max()) == 0.0
        if by_hand < 1.0:
            assert float(jnp.abs(g_dyn[1]).max()) == 0.0 and float(jnp.abs(g_rep[0]).max()) == 0.0
        else:
            assert float(jnp.abs(g_dyn[1]).max()) > 0.0 and float(jnp.abs(g_rep[0]).max()) > 0.0


def test_categorical_kl_matches_hand_computation():
    config = RSSMConfig(stoch=1, classes=3, unimix=0.0)
    p, q = np.array([0.7, 0.2, 0.1]), np.array([0.2, 0.3, 0.5])
    kl = lat.kl(config, jnp.log(p)[None], jnp.log(q)[None])
    np.testing.assert_allclose(kl, np.sum(p * np.log(p / q)), rtol=1e-5)


@pytest.mark.parametrize("classes", [0, 4])
@pytest.mark.parametrize("encoder", ["mlp", "conv"])
def test_shapes(classes, encoder):
    config = RSSMConfig(classes=classes, encoder=encoder, image_size=64, depth=4, **SMALL)
    shape = (64, 64, 3) if encoder == "conv" else (5,)
    model = make_rssm(config, shape, 2)
    check_model(model, deep=True)
    b, t = 3, 4
    key = jax.random.PRNGKey(0)
    params = jax.eval_shape(model.init, key).params
    obs = jnp.zeros((b, t) + shape, jnp.uint8 if encoder == "conv" else jnp.float32)
    out = jax.eval_shape(model.fns.observe, params, obs, jnp.zeros((b, t, 2)),
                         jnp.zeros((b, t)), key)
    z = config.stoch * max(classes, 1)
    stats = (b, t, 4, classes) if classes else (b, t, 8)
    assert out.post.deter.shape == (b, t, 16) and out.post.stoch.shape == (b, t, z)
    assert out.post_stats.shape == stats and out.prior_stats.shape == stats
    assert jax.eval_shape(model.fns.decode, params, out.post).shape == (b, t) + shape
    assert jax.eval_shape(model.fns.reward, params, out.post).shape == (b, t)
    nxt = jax.eval_shape(model.fns.imagine_step, params, model.initial((b,)),
                         jnp.zeros((b, 2)), key)
    assert nxt.deter.shape == (b, 16) and nxt.stoch.shape == (b, z)
    assert model.state_size == 16 + z


def test_bad_config_and_shape():
    with pytest.raises(ValueError, match="RSSMConfig.classes=1 is invalid"):
        RSSMConfig(classes=1)
    with pytest.raises(ValueError, match="obs_shape"):
        make_rssm(RSSMConfig(**SMALL), (64, 64, 3), 2)


def _cartpole_buffer(steps: int = 400):
    env = envs.make("cartpole_swingup")
    batch = acting.reset_batch(env, jax.random.PRNGKey(0), 1)

    def body(batch, key):
        k_act, k_reset = jax.random.split(key)
        action = acting.random_actions(k_act, (1, env.action_size))
        return acting.step_batch(env, batch, action, k_reset)

    _, trans = jax.lax.scan(body, batch, jax.random.split(jax.random.PRNGKey(1), steps))
    trans = jax.tree.map(lambda x: x[:, 0], trans)
    buffer = replay.init(steps, acting.empty_transition(env.observation_size, env.action_size))
    return replay.add(buffer, trans), env


def test_fit_reduces_losses_and_lr_is_a_leaf():
    buffer, env = _cartpole_buffer()
    config = RSSMConfig(deter=64, stoch=8, classes=8, hidden=64, layers=1, learning_rate=3e-3,
                        fit_steps=150, batch_size=8, seq_len=16)
    model = make_rssm(config, env.observation_size, env.action_size)
    state = model.init(jax.random.PRNGKey(2))
    seq = replay.sample_sequences(buffer, jax.random.PRNGKey(3), 16, 16)
    batch = sequences_to_batch(seq)
    terms = jax.jit(model.fns.loss_terms)
    before = terms(state.params, batch, jax.random.PRNGKey(4))

    chex.clear_trace_counter()
    fit = jax.jit(chex.assert_max_traces(model.fit, n=1))
    state, metrics = fit(state, buffer, jax.random.PRNGKey(5))
    state = model.set_learning_rate(state, 1e-3)  # a new value, the same compiled fit
    state, metrics = fit(state, buffer, jax.random.PRNGKey(6))
    after = terms(state.params, batch, jax.random.PRNGKey(4))

    assert not bool(metrics["nonfinite"]) and int(metrics["skipped_steps"]) == 0
    rec0, rec1 = float(before.rec.mean()), float(after.rec.mean())
    rew0, rew1 = float(before.rew.mean()), float(after.rew.mean())
    assert rec1 < 0.5 * rec0, (rec0, rec1)
    assert rew1 < 0.5 * rew0, (rew0, rew1)
    assert float(metrics["last_loss"]) < float(metrics["first_loss"])
    # The protocol's step: reward near the data's, a valid termination probability.
    x = model.feature(jax.tree.map(lambda v: v[:, -1], model.fns.observe(
        state.params, batch.obs, batch.action, batch.is_first, jax.random.PRNGKey(7)).post))
    out = model.step(state, x[None], batch.action[None, :, -1], None, None)
    assert out.next_obs.shape == (1, 16, model.state_size)
    assert bool(jnp.all((out.termination_prob >= 0) & (out.termination_prob <= 1)))


def test_vmapped_init_equals_per_seed_init_without_batched_qr():
    """The GRU's recurrent kernels use `orthogonal_one_key_at_a_time`: vmapped over seeds, the
    parameters equal each seed's own init, and the QR inside stays unbatched (a batched LAPACK
    QR run concurrently deadlocked XLA:CPU's 2-thread pool; see the initializer's docstring)."""
    model = make_rssm(RSSMConfig(**SMALL), (5,), 2)
    keys = jax.random.split(jax.random.PRNGKey(3), 3)
    batched = jax.jit(jax.vmap(lambda k: model.init(k).params))(keys)
    init = jax.jit(lambda k: model.init(k).params)
    for i, key in enumerate(keys):
        single = init(key)
        jax.tree.map(lambda b, s: np.testing.assert_array_equal(b[i], s), batched, single)
    jaxpr = str(jax.make_jaxpr(jax.vmap(lambda k: model.init(k).params))(keys))
    qr_lines = [line for line in jaxpr.splitlines() if "= qr[" in line]
    assert qr_lines and all("f32[16,16]" in line and "f32[3," not in line for line in qr_lines)
