"""Tanh-squashed diagonal Gaussian: the SAC policy distribution over actions in (-1, 1).

If u ~ N(mean, std^2) and a = tanh(u), the change of variables gives
    log p(a) = log N(u; mean, std) - sum_i log(1 - tanh(u_i)^2).
`log(1 - tanh(u)^2)` is evaluated as `2 * (log 2 - u - softplus(-2u))`, which stays finite for
large |u| where `1 - tanh(u)^2` underflows to zero.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def log_det_tanh_jacobian(u: jax.Array) -> jax.Array:
    """log |d tanh(u) / du| summed over the last axis. u: [..., A] -> [...]."""
    return jnp.sum(2.0 * (math.log(2.0) - u - jax.nn.softplus(-2.0 * u)), axis=-1)


def gaussian_log_prob(u: jax.Array, mean: jax.Array, log_std: jax.Array) -> jax.Array:
    """Diagonal Gaussian log-density summed over the last axis. [..., A] -> [...]."""
    z = (u - mean) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * z**2 - log_std - _HALF_LOG_2PI, axis=-1)


def sample_and_log_prob(
    mean: jax.Array, log_std: jax.Array, key: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Reparameterised sample. mean, log_std: [..., A] -> (action [..., A], log_prob [...])."""
    u = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape, mean.dtype)
    return jnp.tanh(u), gaussian_log_prob(u, mean, log_std) - log_det_tanh_jacobian(u)


def log_prob(
    mean: jax.Array, log_std: jax.Array, action: jax.Array, eps: float = 1e-6
) -> jax.Array:
    """log p(action) for given actions in (-1, 1). [..., A] -> [...].

    Actions are clipped to (-1 + eps, 1 - eps) before `arctanh`; use `sample_and_log_prob` in
    training, which never inverts the tanh.
    """
    u = jnp.arctanh(jnp.clip(action, -1.0 + eps, 1.0 - eps))
    return gaussian_log_prob(u, mean, log_std) - log_det_tanh_jacobian(u)


def mode(mean: jax.Array) -> jax.Array:
    """The deterministic action tanh(mean) used for evaluation. [..., A] -> [..., A]."""
    return jnp.tanh(mean)
