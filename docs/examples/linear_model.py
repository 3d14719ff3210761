"""Worked example: a dynamics model written against the protocol alone (docs/architecture.md).

A linear-Gaussian model x' = W^T [x, u, 1] + sigma * eps, fitted in closed form by ridge
regression on the replay buffer's valid rows. It knows nothing of ensembles, yet PETS plans with
it, MBPO imagines with it and `mbjax.rollout.imagine` differentiates through it.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from mbjax.models.state import ModelStep


class LinearState(NamedTuple):
    """weights: [S + A + 1, S]; sigma: [S] residual std (the aleatoric noise)."""

    weights: jax.Array
    sigma: jax.Array


class LinearModel(NamedTuple):
    """The protocol's attributes (`mbjax.models.base`) for a single linear-Gaussian model."""

    state_size: int
    action_size: int
    ridge: float = 1e-3
    num_members: int = 1
    num_elites: int = 1
    has_reward: bool = False
    has_termination: bool = False

    def init(self, key: jax.Array) -> LinearState:
        del key  # x' = x to start with
        eye = jnp.eye(self.state_size, self.state_size + self.action_size + 1).T
        return LinearState(weights=eye, sigma=jnp.zeros((self.state_size,)))

    def fit(self, state: LinearState, data: Any, key: jax.Array):
        """Ridge regression on the valid rows of a ReplayBuffer of Transitions."""
        del key
        t = data.data
        valid = (jnp.arange(t.obs.shape[0]) < data.size)[:, None]
        inputs = jnp.where(valid, self._features(t.obs, t.action), 0.0)
        targets = jnp.where(valid, t.next_obs, 0.0)
        gram = inputs.T @ inputs + self.ridge * jnp.eye(inputs.shape[-1])
        weights = jnp.linalg.solve(gram, inputs.T @ targets)
        residual = jnp.where(valid, targets - inputs @ weights, 0.0)
        count = jnp.maximum(jnp.sum(valid), 1)
        mse = jnp.sum(jnp.square(residual), axis=0) / count
        loss = jnp.mean(mse)
        metrics = {"train_loss": loss, "holdout_loss": loss,
                   "nonfinite": ~jnp.all(jnp.isfinite(weights))}
        return LinearState(weights=weights, sigma=jnp.sqrt(mse)), metrics

    def step(self, state: LinearState, x: jax.Array, action: jax.Array,
             key: jax.Array | None = None, members: jax.Array | None = None) -> ModelStep:
        """x [M, R, S], action [M, R, A] -> ModelStep [M, R]; every member is the same model."""
        del members
        mean = self._features(x, action) @ state.weights
        if key is not None:
            mean = mean + state.sigma * jax.random.normal(key, mean.shape, mean.dtype)
        return ModelStep(next_obs=mean, reward=None, termination_prob=None)

    def elites(self, state: LinearState) -> jax.Array:
        return jnp.arange(self.num_members, dtype=jnp.int32)

    @staticmethod
    def _features(x: jax.Array, action: jax.Array) -> jax.Array:
        return jnp.concatenate([x, action, jnp.ones(x.shape[:-1] + (1,), x.dtype)], axis=-1)
