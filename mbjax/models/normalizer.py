"""Per-feature mean/std normalizers as pytrees, fitted from the valid part of a buffer in jit."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

# Features whose std falls below this are left unscaled (std 1): constant inputs stay finite.
_MIN_STD = 1e-6


@struct.dataclass
class Normalizer:
    """mean, std: [dim]."""

    mean: jax.Array
    std: jax.Array


def init_normalizer(dim: int) -> Normalizer:
    """Identity normalizer (mean 0, std 1)."""
    return Normalizer(mean=jnp.zeros((dim,), jnp.float32), std=jnp.ones((dim,), jnp.float32))


def fit_normalizer(x: jax.Array, mask: jax.Array) -> Normalizer:
    """Mean/std over the rows of `x: [n, dim]` where `mask: [n]` is 1 (traced count, no retrace).

    With no valid rows the identity normalizer is returned.
    """
    valid = mask.astype(bool)[:, None]
    count = jnp.maximum(jnp.sum(valid, dtype=x.dtype), 1.0)
    # `where`, not multiplication: unused slots may hold NaN, and NaN * 0 is NaN.
    x = jnp.where(valid, x, 0.0)
    mean = jnp.sum(x, axis=0) / count
    var = jnp.sum(jnp.where(valid, jnp.square(x - mean), 0.0), axis=0) / count
    std = jnp.sqrt(var)
    std = jnp.where(std < _MIN_STD, 1.0, std)
    return Normalizer(mean=mean, std=std)


def normalize(n: Normalizer, x: jax.Array) -> jax.Array:
    """(x - mean) / std over the last axis."""
    return (x - n.mean) / n.std


def denormalize(n: Normalizer, x: jax.Array) -> jax.Array:
    """x * std + mean over the last axis."""
    return x * n.std + n.mean
