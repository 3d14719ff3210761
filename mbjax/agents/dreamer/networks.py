"""Dreamer's actor and critic (flax.linen, executed functionally) and the policy distributions.

Both read the RSSM feature feat = concat(deter, stoch) [..., F] through the RSSM's MLP block
(Dense -> LayerNorm -> SiLU, as DreamerV3).

Policy distributions (DreamerV3, "Actor learning"), from the actor's raw output:
- continuous, raw [..., 2A]: a bounded normal, mean = tanh(m), std = (max - min) *
  sigmoid(s + 2) + min; samples are clipped to [-1, 1] with a straight-through gradient (the
  clip is the identity for the gradient), log-prob and entropy are the normal's;
- discrete, raw [..., K]: a categorical whose probabilities are mixed with `unimix` of the
  uniform distribution; samples are one-hot [..., K] (what the RSSM takes as its action).
"""

from __future__ import annotations

from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from mbjax.models.rssm.networks import MLP


class Actor(nn.Module):
    """feat [..., F] -> raw policy output [..., out_size] (2A continuous, K discrete).

    The output layer's initial weights are scaled by `out_scale` (DreamerV3's `policy.outscale`
    0.01): the first policy is then near-uniform (discrete) or has mean ~ 0 and the widest std
    (continuous), instead of a random state-dependent bias that drives the system to one side
    before any learning (on dmc/CartpoleBalance the unscaled init's first evaluations scored
    100-270, the zero action ~700)."""

    hidden: int
    layers: int
    out_size: int
    out_scale: float = 1.0

    @nn.compact
    def __call__(self, feat: jax.Array) -> jax.Array:
        init = nn.initializers.variance_scaling(self.out_scale**2, "fan_in", "truncated_normal")
        return nn.Dense(self.out_size, kernel_init=init)(MLP(self.hidden, self.layers)(feat))


class Critic(nn.Module):
    """feat [..., F] -> twohot logits [..., bins] over symlog bins. The output layer starts at
    zero (DreamerV3): the first values are 0, not random returns the critic must unlearn."""

    hidden: int
    layers: int
    bins: int

    @nn.compact
    def __call__(self, feat: jax.Array) -> jax.Array:
        out = nn.Dense(self.bins, kernel_init=nn.initializers.zeros)
        return out(MLP(self.hidden, self.layers)(feat))


class PolicyDist(NamedTuple):
    """A policy distribution: `discrete` (static) selects which fields mean what.

    continuous: mean [..., A], std [..., A];  discrete: log_probs [..., K] in `mean`, `std`
    unused (zeros)."""

    mean: jax.Array
    std: jax.Array
    discrete: bool


def policy_dist(raw: jax.Array, discrete: bool, min_std: float, max_std: float,
                unimix: float) -> PolicyDist:
    """The actor's raw output [..., 2A | K] -> PolicyDist (see the module docstring)."""
    if discrete:
        probs = jax.nn.softmax(raw, -1)
        probs = (1.0 - unimix) * probs + unimix / raw.shape[-1]
        return PolicyDist(jnp.log(probs), jnp.zeros_like(raw), True)
    mean, std = jnp.split(raw, 2, -1)
    std = (max_std - min_std) * jax.nn.sigmoid(std + 2.0) + min_std
    return PolicyDist(jnp.tanh(mean), std, False)


def sample(dist: PolicyDist, key: jax.Array) -> jax.Array:
    """An action [..., A] (continuous, in [-1, 1], reparameterised) or one-hot [..., K]."""
    if dist.discrete:
        idx = jax.random.categorical(key, dist.mean, -1)
        return jax.nn.one_hot(idx, dist.mean.shape[-1])
    x = dist.mean + dist.std * jax.random.normal(key, dist.mean.shape)
    return x + jax.lax.stop_gradient(jnp.clip(x, -1.0, 1.0) - x)


def mode(dist: PolicyDist) -> jax.Array:
    """The most likely action: the mean, or the one-hot argmax."""
    if dist.discrete:
        return jax.nn.one_hot(jnp.argmax(dist.mean, -1), dist.mean.shape[-1])
    return dist.mean


def log_prob(dist: PolicyDist, action: jax.Array) -> jax.Array:
    """log pi(action) [...], summed over action dims (one-hot actions for discrete)."""
    if dist.discrete:
        return jnp.sum(action * dist.mean, -1)
    z = (action - dist.mean) / dist.std
    return jnp.sum(-0.5 * z**2 - jnp.log(dist.std) - 0.5 * jnp.log(2.0 * jnp.pi), -1)


def entropy(dist: PolicyDist) -> jax.Array:
    """Entropy [...] (nats), summed over action dims."""
    if dist.discrete:
        return -jnp.sum(jnp.exp(dist.mean) * dist.mean, -1)
    return jnp.sum(jnp.log(dist.std) + 0.5 * jnp.log(2.0 * jnp.pi * jnp.e), -1)
