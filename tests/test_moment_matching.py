"""The moment-matching propagation mode (PETS's MM): particles refitted to a Gaussian and
resampled after every step. Exact for a linear-Gaussian model: the particle cloud then has the
analytic mean A^t x0 + ... and covariance sum A^k sigma^2 A^kT."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mbjax.models import ModelStep, check_model
from mbjax.rollout import PropagationConfig, propagate
from mbjax.rollout.modes import MODES, refit_and_resample

A = np.array([[0.9, 0.2, 0.0], [-0.1, 0.95, 0.1], [0.0, 0.3, 0.8]], np.float32)
B = np.array([[0.0], [0.5], [1.0]], np.float32)
SIGMA = np.array([0.1, 0.05, 0.2], np.float32)


class LinearGaussian(NamedTuple):
    """x' = A x + B u + diag(SIGMA) eps, one member (the dynamics-model protocol)."""

    state_size: int = 3
    action_size: int = 1
    num_members: int = 1
    num_elites: int = 1
    has_reward: bool = False
    has_termination: bool = False

    def init(self, key):
        return jnp.zeros(())

    def fit(self, state, data, key):
        z = jnp.zeros(())
        return state, {"train_loss": z, "holdout_loss": z, "nonfinite": z > 0}

    def step(self, state, x, action, key=None, members=None):
        mean = x @ A.T + action @ B.T
        if key is not None:
            mean = mean + SIGMA * jax.random.normal(key, mean.shape)
        return ModelStep(next_obs=mean, reward=None, termination_prob=None)

    def elites(self, state):
        return jnp.zeros((1,), jnp.int32)


def _analytic(x0, actions):
    mean, cov, out = x0.astype(np.float64), np.zeros((3, 3)), []
    for u in actions:
        mean = A @ mean + B @ u
        cov = A @ cov @ A.T + np.diag(SIGMA.astype(np.float64) ** 2)
        out.append((mean.copy(), cov.copy()))
    return out


def test_moment_matching_is_registered_and_exact_for_a_linear_gaussian_model():
    assert "moment_matching" in MODES
    model = LinearGaussian()
    check_model(model, deep=True)
    x0 = jnp.array([0.5, -1.0, 0.3])
    actions = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (2, 6, 1)), jnp.float32)
    config = PropagationConfig(mode="moment_matching", num_particles=20_000)
    reward = lambda o, a, n: -jnp.sum(n**2)
    for seed in (0, 1):
        out = jax.jit(lambda k: propagate(model, config, None, x0, actions, k, reward,
                                          return_trajectories=True))(jax.random.PRNGKey(seed))
        for c in range(2):
            ref = _analytic(np.asarray(x0), np.asarray(actions[c]))
            for t in (0, 2, 5):  # trajectories[:, :, t + 1] is the state after step t
                states = np.asarray(out.trajectories[c, :, t + 1], np.float64)
                mean, cov = ref[t]
                std = np.sqrt(np.diag(cov))
                assert np.all(np.abs(states.mean(0) - mean) < 0.05 * std), (t, states.mean(0))
                scale = np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
                assert np.all(np.abs(np.cov(states.T) - cov) < 0.05 * scale), (t, np.cov(states.T))
        # Expected return -E|x_t|^2 summed over steps equals the analytic one.
        for c in range(2):
            ref = _analytic(np.asarray(x0), np.asarray(actions[c]))
            expected = -sum(float(mu @ mu + np.trace(cov)) for mu, cov in ref)
            assert abs(float(out.values[c]) - expected) < 0.02 * abs(expected)


def test_refit_and_resample_keeps_mean_and_covariance_and_mixes_members():
    key_x, key_n = jax.random.split(jax.random.PRNGKey(3))
    x = jax.random.normal(key_x, (4, 2, 5000, 3)) * jnp.array([1.0, 0.5, 2.0]) + 1.0
    x = x.at[..., 2].set(x[..., 0] * 2.0)  # a singular covariance is fine
    new = refit_and_resample(x, jax.random.normal(key_n, (2, 20_000, 3)))
    for n in range(2):
        old_p = np.asarray(jnp.swapaxes(x, 0, 1)[n].reshape(-1, 3), np.float64)
        new_p = np.asarray(jnp.swapaxes(new, 0, 1)[n].reshape(-1, 3), np.float64)
        std = old_p.std(0)
        assert np.all(np.abs(new_p.mean(0) - old_p.mean(0)) < 0.05 * std)
        scale = np.outer(std, std)
        assert np.all(np.abs(np.cov(new_p.T) - np.cov(old_p.T)) < 0.05 * scale)
        # the linear dependence survives the resampling (exact square root, no jitter)
        np.testing.assert_allclose(new_p[:, 2], 2.0 * new_p[:, 0], atol=1e-2)  # float32 eigh
