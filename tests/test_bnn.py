"""The BNN dynamics model: local reparameterization and the KL against Monte Carlo, the
uncertainty it reports outside its data, the protocol, and PETS planning with it."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from mbjax import acting, replay
from mbjax.models import check_model
from mbjax.models.bnn import BNNConfig, make_bnn
from mbjax.models.bnn import layers as bl
from mbjax.types import Transition


def _layer(seed: int = 0, n_in: int = 4, n_out: int = 3) -> dict:
    rng = np.random.default_rng(seed)
    return {"w_mu": jnp.asarray(rng.normal(size=(n_in, n_out)), jnp.float32),
            "w_rho": jnp.asarray(rng.normal(-1.0, 0.5, size=(n_in, n_out)), jnp.float32),
            "b_mu": jnp.asarray(rng.normal(size=n_out), jnp.float32),
            "b_rho": jnp.asarray(rng.normal(-1.0, 0.5, size=n_out), jnp.float32)}


def test_local_reparameterization_matches_weight_sampling():
    """The pre-activation's mean and std equal those of x W + b over 1e5 weight samples."""
    layer = _layer()
    x = jnp.asarray(np.random.default_rng(1).normal(size=(2, 4)), jnp.float32)
    mean = bl.local_reparam_dense(layer, x, jnp.zeros((2, 3)))
    std = bl.local_reparam_dense(layer, x, jnp.ones((2, 3))) - mean
    noise = bl.weight_noise(jax.random.key(2), [layer], 100_000)
    w = bl.sample_weights([layer], noise)[0]
    pre = jnp.einsum("bi,mio->mbo", x, w["w"]) + w["b"][:, None]
    np.testing.assert_allclose(mean, pre.mean(0), atol=0.02 * float(std.max()))
    np.testing.assert_allclose(std, pre.std(0), rtol=0.02)


def test_kl_to_prior_matches_monte_carlo():
    layer = _layer(3, 3, 2)
    prior = 0.7
    noise = bl.weight_noise(jax.random.key(4), [layer], 200_000)
    w = bl.sample_weights([layer], noise)[0]
    def log_normal(v, mu, sd):
        return -0.5 * ((v - mu) / sd) ** 2 - jnp.log(sd) - 0.5 * jnp.log(2 * jnp.pi)
    mc = 0.0
    for name in ("w", "b"):
        mu, sd = layer[f"{name}_mu"], jax.nn.softplus(layer[f"{name}_rho"])
        mc += jnp.mean(jnp.sum((log_normal(w[name], mu, sd) - log_normal(w[name], 0.0, prior))
                               .reshape(w[name].shape[0], -1), axis=1))
    np.testing.assert_allclose(bl.kl_to_prior([layer], prior), mc, rtol=0.02)


def _regression_buffer(n: int = 256) -> replay.ReplayBuffer:
    """1-D regression as transitions: obs x in [-1, 1], action 0, next_obs - obs = sin(3x)."""
    rng = np.random.default_rng(5)
    x = rng.uniform(-1, 1, (n, 1)).astype(np.float32)
    y = np.sin(3 * x) + 0.05 * rng.normal(size=x.shape).astype(np.float32)
    zeros = np.zeros(n, np.float32)
    data = Transition(obs=x, action=np.zeros((n, 1), np.float32), reward=zeros, next_obs=x + y,
                      terminated=zeros, truncated=zeros)
    return replay.add(replay.init(n, acting.empty_transition(1, 1)), data)


def test_uncertainty_is_larger_outside_the_data():
    config = BNNConfig(hidden_sizes=(32, 32), num_members=8, batch_size=64, fit_steps=3000,
                       kl_warmup_steps=500, learning_rate=3e-3)
    model = make_bnn(config, 1, 1)
    state, metrics = jax.jit(model.fit)(model.init(jax.random.key(0)), _regression_buffer(),
                                        jax.random.key(1))
    assert not bool(metrics["nonfinite"])
    assert float(metrics["holdout_loss"]) < 0.1  # normalized MSE: it fits the sine

    def predictive_std(x0: float) -> float:
        x = jnp.full((model.num_members, 256, 1), x0)
        out = jax.jit(model.step)(state, x, jnp.zeros_like(x), jax.random.key(2))
        return float(jnp.std(out.next_obs - x))

    inside = max(predictive_std(v) for v in (-0.5, 0.0, 0.5))
    outside = min(predictive_std(v) for v in (-3.0, 3.0))
    assert outside >= 3.0 * inside, (inside, outside)


def test_protocol_and_pets_plan_with_it():
    from mbjax.agents import pets
    from mbjax.agents.program import make_pure_train

    config = pets.preset("point_mass", "test")
    model = make_bnn(BNNConfig(hidden_sizes=(16,), num_members=2, fit_steps=20, batch_size=32),
                     2, 1)  # point_mass: obs [2], action [1]
    check_model(model, deep=True)
    program = pets.make_program(config, pets.make_pets(config, model=model))
    final, metrics = jax.jit(make_pure_train(program))(jax.random.key(0))
    assert np.all(np.isfinite(np.asarray(metrics.episode_return)))
    assert int(final.model.steps) == 20 * (config.num_episodes - config.num_seed_episodes)
