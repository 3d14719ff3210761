"""Generalized advantage estimation (Schulman et al. 2016) over time-major batches."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def gae(rewards: jax.Array, values: jax.Array, last_value: jax.Array, dones: jax.Array,
        alive: jax.Array, discount: float, lam: float) -> tuple[jax.Array, jax.Array]:
    """(advantages [T, N], returns [T, N]).

    rewards, dones: [T, N] of transition t (done: termination, no bootstrap past it); values:
    [T, N] V(s_t); last_value: [N] V(s_T); alive: [T, N] the probability that transition t
    happens (its reward counts; later transitions of an ended rollout carry no weight).
    delta_t = r_t + gamma (1 - d_t) V(s_{t+1}) - V(s_t); A_t = delta_t + gamma lambda (1 - d_t)
    A_{t+1}; returns = A + V.
    """
    next_values = jnp.concatenate([values[1:], last_value[None]], axis=0)
    deltas = rewards + discount * (1.0 - dones) * next_values - values

    def back(adv_next, xs):
        delta, done = xs
        adv = delta + discount * lam * (1.0 - done) * adv_next
        return adv, adv

    _, adv = jax.lax.scan(back, jnp.zeros_like(last_value), (deltas, dones), reverse=True)
    adv = adv * (alive > 0)
    return adv, adv + values
