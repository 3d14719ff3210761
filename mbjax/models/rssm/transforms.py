"""DreamerV3's scale-free target transforms: symlog / symexp and twohot encoding over bins.

symlog compresses large magnitudes (sign(x) log(1 + |x|)) so one loss scale fits rewards and
observations of any size; a twohot head regresses a scalar as a categorical over fixed bins
(cross-entropy, whose gradient does not grow with the target's magnitude), decoded as the
expected bin value.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def symlog(x: jax.Array) -> jax.Array:
    """sign(x) * log(1 + |x|), elementwise."""
    return jnp.sign(x) * jnp.log1p(jnp.abs(x))


def symexp(x: jax.Array) -> jax.Array:
    """The inverse of symlog: sign(x) * (exp(|x|) - 1), elementwise."""
    return jnp.sign(x) * jnp.expm1(jnp.abs(x))


def bins(num_bins: int, bin_range: float) -> jax.Array:
    """[num_bins] evenly spaced bin centres in [-bin_range, bin_range] (symlog space)."""
    return jnp.linspace(-bin_range, bin_range, num_bins, dtype=jnp.float32)


def twohot(x: jax.Array, bin_values: jax.Array) -> jax.Array:
    """x [...] -> [..., K]: weights on the two bins around x that sum to 1 and whose expected
    bin value is x (x outside the bins is clipped to the end bins first)."""
    k = bin_values.shape[0]
    x = jnp.clip(x, bin_values[0], bin_values[-1])
    lo = jnp.clip(jnp.searchsorted(bin_values, x, side="right") - 1, 0, k - 2)
    left, right = bin_values[lo], bin_values[lo + 1]
    w_hi = (x - left) / (right - left)
    return (jax.nn.one_hot(lo, k) * (1.0 - w_hi)[..., None]
            + jax.nn.one_hot(lo + 1, k) * w_hi[..., None])


def twohot_decode(probs: jax.Array, bin_values: jax.Array) -> jax.Array:
    """probs [..., K] (summing to 1) -> [...]: the expected bin value."""
    return jnp.sum(probs * bin_values, axis=-1)


def twohot_loss(logits: jax.Array, target: jax.Array, bin_values: jax.Array) -> jax.Array:
    """Cross-entropy of logits [..., K] against twohot(symlog(target [...])) -> [...]."""
    labels = twohot(symlog(target), bin_values)
    return -jnp.sum(labels * jax.nn.log_softmax(logits, axis=-1), axis=-1)


def twohot_mean(logits: jax.Array, bin_values: jax.Array) -> jax.Array:
    """The scalar a twohot head predicts: symexp(E[bin]) for logits [..., K] -> [...]."""
    return symexp(twohot_decode(jax.nn.softmax(logits, axis=-1), bin_values))
