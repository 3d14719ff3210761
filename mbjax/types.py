"""Shared pytree types used across layers."""

from __future__ import annotations

import jax
from flax import struct


@struct.dataclass
class Transition:
    """A batch of environment transitions; every leaf has the same leading shape.

    obs: [..., obs_dim], action: [..., A], reward: [...], next_obs: [..., obs_dim],
    terminated: [...] (1.0 where the episode ended by termination, not by a time limit).
    """

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    next_obs: jax.Array
    terminated: jax.Array
