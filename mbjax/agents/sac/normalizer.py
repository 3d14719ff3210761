"""Running mean / standard deviation of observations as a pytree (optional for SAC)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class RunningMeanStd:
    """count: [] float32; mean, m2: [obs_dim] (m2 = sum of squared deviations)."""

    count: jax.Array
    mean: jax.Array
    m2: jax.Array

    @property
    def var(self) -> jax.Array:
        # Unit variance until there is data, so normalising an empty normaliser is the identity.
        return jnp.where(self.count > 0, self.m2 / jnp.maximum(self.count, 1.0), 1.0)


def init(obs_size: int) -> RunningMeanStd:
    """Empty statistics for observations of size `obs_size`."""
    zeros = jnp.zeros((obs_size,), jnp.float32)
    return RunningMeanStd(count=jnp.zeros((), jnp.float32), mean=zeros, m2=zeros)


def update(stats: RunningMeanStd, obs: jax.Array) -> RunningMeanStd:
    """Merges a batch obs: [N, obs_dim] into the statistics (Chan et al.'s parallel update)."""
    obs = jnp.reshape(obs, (-1, stats.mean.shape[-1])).astype(jnp.float32)
    n = jnp.asarray(obs.shape[0], jnp.float32)
    batch_mean = jnp.mean(obs, axis=0)
    batch_m2 = jnp.sum((obs - batch_mean) ** 2, axis=0)
    total = stats.count + n
    delta = batch_mean - stats.mean
    mean = stats.mean + delta * n / total
    m2 = stats.m2 + batch_m2 + delta**2 * stats.count * n / total
    return RunningMeanStd(count=total, mean=mean, m2=m2)


def normalize(
    stats: RunningMeanStd, obs: jax.Array, eps: float = 1e-8, clip: float = 10.0
) -> jax.Array:
    """(obs - mean) / std, clipped to [-clip, clip]. obs: [..., obs_dim]."""
    z = (obs - stats.mean) / jnp.sqrt(stats.var + eps)
    return jnp.clip(z, -clip, clip)
