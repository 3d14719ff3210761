"""The RSSM's latent state and its stochastic part's distributions (Gaussian or categorical).

A latent is `Latent(deter [..., D], stoch [..., Z])` with Z = stoch * max(classes, 1) (a
categorical latent is stored flattened one-hot, [..., stoch * classes]). Its distribution is one
array of "stats":
    Gaussian (classes == 0):    [..., 2 * stoch] = concat(mean, std), std = softplus + min_std
    categorical (classes > 0):  [..., stoch, classes] log-probabilities after unimix
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from mbjax.models.rssm.config import RSSMConfig


class Latent(NamedTuple):
    """deter [..., D]: the GRU state; stoch [..., Z]: the sampled stochastic state, flattened."""

    deter: jax.Array
    stoch: jax.Array


def stats_size(config: RSSMConfig) -> int:
    """Width of the networks' raw stats output: stoch * classes, or 2 * stoch (mean, std)."""
    return config.stoch * config.classes if config.classes else 2 * config.stoch


def initial(config: RSSMConfig, batch_shape: tuple[int, ...]) -> Latent:
    """The all-zero latent a sequence starts from, [*batch_shape, ...]."""
    return Latent(jnp.zeros(batch_shape + (config.deter,)),
                  jnp.zeros(batch_shape + (config.stoch_size,)))


def feature(latent: Latent) -> jax.Array:
    """The flat latent x = concat(deter, stoch) [..., D + Z] (the heads' input and the protocol's
    state)."""
    return jnp.concatenate([latent.deter, latent.stoch], -1)


def from_feature(config: RSSMConfig, x: jax.Array) -> Latent:
    """Inverse of `feature`: x [..., D + Z] -> Latent."""
    return Latent(x[..., : config.deter], x[..., config.deter:])


def dist_stats(config: RSSMConfig, raw: jax.Array) -> jax.Array:
    """Raw network output [..., stats_size] -> stats (see module docstring).

    Unimix: probs = (1 - u) softmax(logits) + u / classes, so every class keeps probability
    >= u / classes; the KL between posterior and prior then stays finite and bounded, and a
    straight-through gradient never vanishes on a saturated softmax (DreamerV3: u = 0.01).
    """
    if config.classes:
        logits = raw.reshape(raw.shape[:-1] + (config.stoch, config.classes))
        probs = jax.nn.softmax(logits, -1)
        probs = (1.0 - config.unimix) * probs + config.unimix / config.classes
        return jnp.log(probs)
    mean, std = jnp.split(raw, 2, -1)
    return jnp.concatenate([mean, jax.nn.softplus(std) + config.min_std], -1)


def sample(config: RSSMConfig, stats: jax.Array, key: jax.Array) -> jax.Array:
    """A reparameterized sample [..., Z]: Gaussian mean + std * eps, or a one-hot categorical
    with straight-through gradients (one_hot + p - sg(p): the forward value is the one-hot, the
    gradient that of the probabilities)."""
    if config.classes:
        idx = jax.random.categorical(key, stats, -1)
        probs = jnp.exp(stats)
        onehot = jax.nn.one_hot(idx, config.classes, dtype=probs.dtype)
        onehot = onehot + probs - jax.lax.stop_gradient(probs)
        return onehot.reshape(onehot.shape[:-2] + (-1,))
    mean, std = jnp.split(stats, 2, -1)
    return mean + std * jax.random.normal(key, mean.shape, mean.dtype)


def mode(config: RSSMConfig, stats: jax.Array) -> jax.Array:
    """The most likely stochastic state [..., Z] (Gaussian mean; one-hot argmax, which stays on
    the one-hot states the heads were trained on)."""
    if config.classes:
        onehot = jax.nn.one_hot(jnp.argmax(stats, -1), config.classes)
        return onehot.reshape(onehot.shape[:-2] + (-1,))
    return jnp.split(stats, 2, -1)[0]


def kl(config: RSSMConfig, lhs: jax.Array, rhs: jax.Array) -> jax.Array:
    """KL(lhs || rhs) summed over the latent dims: stats [..., *] -> [...]."""
    if config.classes:
        return jnp.sum(jnp.exp(lhs) * (lhs - rhs), axis=(-2, -1))
    m1, s1 = jnp.split(lhs, 2, -1)
    m2, s2 = jnp.split(rhs, 2, -1)
    per_dim = jnp.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2.0 * s2**2) - 0.5
    return jnp.sum(per_dim, -1)


def entropy(config: RSSMConfig, stats: jax.Array) -> jax.Array:
    """Entropy summed over the latent dims: stats [..., *] -> [...] (a logging diagnostic)."""
    if config.classes:
        return -jnp.sum(jnp.exp(stats) * stats, axis=(-2, -1))
    std = jnp.split(stats, 2, -1)[1]
    return jnp.sum(jnp.log(std) + 0.5 * jnp.log(2.0 * jnp.pi * jnp.e), -1)
