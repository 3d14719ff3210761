"""DM Control's `tolerance` reward shaping, written for `jnp` arrays of any shape.

tolerance(x, bounds=(lo, hi), margin, sigmoid, value_at_margin) is 1 inside [lo, hi]; outside
it falls with the distance d to the nearest bound: 0 if margin == 0, else sigmoid(d / margin),
where the sigmoid equals `value_at_margin` at 1. Only the sigmoids the DMC tasks here use.
"""

from __future__ import annotations

import math

import jax.numpy as jnp

SIGMOIDS = ("gaussian", "linear", "quadratic")


def _sigmoid(x: jnp.ndarray, value_at_1: float, kind: str) -> jnp.ndarray:
    if kind == "gaussian":
        if not 0.0 < value_at_1 < 1.0:
            raise ValueError(f"gaussian value_at_margin={value_at_1} must be in (0, 1)")
        return jnp.exp(-0.5 * (x * math.sqrt(-2.0 * math.log(value_at_1))) ** 2)
    if not 0.0 <= value_at_1 < 1.0:
        raise ValueError(f"{kind} value_at_margin={value_at_1} must be in [0, 1)")
    if kind == "linear":
        s = x * (1.0 - value_at_1)
        return jnp.where(jnp.abs(s) < 1.0, 1.0 - s, 0.0)
    if kind == "quadratic":
        s = x * math.sqrt(1.0 - value_at_1)
        return jnp.where(jnp.abs(s) < 1.0, 1.0 - s**2, 0.0)
    raise ValueError(f"sigmoid={kind!r} is not one of {SIGMOIDS}")


def tolerance(
    x: jnp.ndarray,
    bounds: tuple[float, float] = (0.0, 0.0),
    margin: float = 0.0,
    sigmoid: str = "gaussian",
    value_at_margin: float = 0.1,
) -> jnp.ndarray:
    """Elementwise: x [...] -> [...] in [0, 1]."""
    lo, hi = bounds
    if lo > hi:
        raise ValueError(f"bounds={bounds} must satisfy lower <= upper")
    if margin < 0:
        raise ValueError(f"margin={margin} must be >= 0")
    in_bounds = (lo <= x) & (x <= hi)
    if margin == 0:
        return jnp.where(in_bounds, 1.0, 0.0)
    d = jnp.where(x < lo, lo - x, x - hi) / margin
    return jnp.where(in_bounds, 1.0, _sigmoid(d, value_at_margin, sigmoid))
