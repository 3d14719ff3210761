"""Shared pytree types used across layers."""

from __future__ import annotations

import jax
from flax import struct


@struct.dataclass
class Transition:
    """A batch of environment transitions; every leaf has the same leading shape.

    obs: [..., obs_dim], action: [..., A], reward: [...], next_obs: [..., obs_dim],
    terminated: [...] (1.0 where the episode ended by termination, not by a time limit),
    truncated: [...] (1.0 where the episode ended by its time limit; the step still bootstraps).
    An episode ends at a transition with terminated or truncated set; sequence sampling
    (`mbjax.replay.sample_sequences`) never crosses such an end.
    """

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    next_obs: jax.Array
    terminated: jax.Array
    truncated: jax.Array
