"""lambda-returns and DreamerV3's percentile return normalisation.

lambda-return (Sutton & Barto 12.1; Dreamer, Hafner et al. 2020, eq. 6; DreamerV3 eq. 7), for
an imagined trajectory of states s_0..s_H with rewards r_t and continue flags c_t reached at
s_t (t = 1..H) and critic values v_t = v(s_t):

    R_H = v_H
    R_t = r_{t+1} + gamma * c_{t+1} * ((1 - lambda) * v_{t+1} + lambda * R_{t+1}),  t < H

Return normalisation (DreamerV3, "Actor learning"): returns are divided by
S = max(limit, P_high - P_low), where P_low / P_high are EMAs of the 5th and 95th percentiles
of the batch's lambda-returns. Large returns are scaled down to about [0, 1] while small
(sparse) returns are not scaled up, so the entropy bonus keeps a fixed meaning.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


def lambda_returns(rewards: jax.Array, conts: jax.Array, values: jax.Array, discount: jax.Array,
                   lam: jax.Array) -> jax.Array:
    """rewards, conts [H, ...] (reached at steps 1..H), values [H + 1, ...] (steps 0..H) ->
    lambda-returns [H, ...] of steps 0..H-1 (a reverse lax.scan)."""

    def body(next_return, xs):
        reward, cont, next_value = xs
        ret = reward + discount * cont * ((1.0 - lam) * next_value + lam * next_return)
        return ret, ret

    _, returns = jax.lax.scan(body, values[-1], (rewards, conts, values[1:]), reverse=True)
    return returns


class ReturnNorm(NamedTuple):
    """EMAs of the low / high return percentiles ([] float32) and whether any update happened
    (the first update sets them to the batch's percentiles rather than decaying from 0)."""

    low: jax.Array
    high: jax.Array
    initialized: jax.Array

    @classmethod
    def create(cls) -> ReturnNorm:
        zero = jnp.zeros((), jnp.float32)
        return cls(zero, zero, jnp.zeros((), bool))


def update_return_norm(norm: ReturnNorm, returns: jax.Array, rate: jax.Array,
                       low_pct: float, high_pct: float) -> ReturnNorm:
    """The EMA after one batch of returns [...] (all entries weigh the same):
    x <- (1 - rate) * x + rate * percentile(returns), or the percentile itself at first."""
    low = jnp.percentile(returns, low_pct)
    high = jnp.percentile(returns, high_pct)
    ema = lambda old, new: jnp.where(norm.initialized, (1.0 - rate) * old + rate * new, new)  # noqa: E731
    return ReturnNorm(ema(norm.low, low), ema(norm.high, high), jnp.ones((), bool))


def return_scale(norm: ReturnNorm, limit: float) -> jax.Array:
    """S = max(limit, high - low): what returns and advantages are divided by."""
    return jnp.maximum(limit, norm.high - norm.low)


def discount_weights(conts: jax.Array, discount: jax.Array) -> jax.Array:
    """conts [H, ...] (steps 1..H) -> weights [H, ...] of steps 0..H-1: w_0 = 1,
    w_t = prod_{k<=t} discount * c_k, so imagined steps after a predicted termination (and far
    ahead) count less in the actor and critic losses (DreamerV3's `weight`)."""
    factors = jnp.concatenate([jnp.ones_like(conts[:1]), discount * conts[:-1]], 0)
    return jnp.cumprod(factors, 0)
