"""Pytree containers of a trained ensemble and its outputs."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
from flax import struct

from mbjax.models.normalizer import Normalizer


@struct.dataclass
class ModelNormalizer:
    """inputs: over [features(obs) ++ action]; targets: over [delta_obs (++ reward)]."""

    inputs: Normalizer
    targets: Normalizer


@struct.dataclass
class ModelState:
    """Everything a fitted ensemble needs, as one pytree.

    params: {"layers": [{"w": [E, in, out], "b": [E, out]}, ...],
             "max_logvar": [E, D], "min_logvar": [E, D]}  (bounds only when probabilistic),
    normalizer: ModelNormalizer, opt_state: optax state of params,
    elites: [K] int32 member indices, best first, holdout_score: [E] (last fit's holdout metric).
    """

    params: Any
    normalizer: ModelNormalizer
    opt_state: Any
    elites: jax.Array
    holdout_score: jax.Array


class Prediction(NamedTuple):
    """Per-member outputs in normalized target units, over [E, ...].

    mean, logvar: [E, ..., obs_dim] (normalized state delta; logvar None if deterministic),
    reward, reward_logvar: [E, ...] (normalized; None without a reward head / if deterministic),
    termination_logit: [E, ...] (None without a termination head).
    """

    mean: jax.Array
    logvar: jax.Array | None
    reward: jax.Array | None
    reward_logvar: jax.Array | None
    termination_logit: jax.Array | None


class RawPrediction(NamedTuple):
    """Per-member predictions in raw units, over [E, ...].

    next_obs_mean, next_obs_var: [E, ..., obs_dim] (var None if deterministic),
    reward_mean, reward_var: [E, ...] or None, termination_prob: [E, ...] or None.
    """

    next_obs_mean: jax.Array
    next_obs_var: jax.Array | None
    reward_mean: jax.Array | None
    reward_var: jax.Array | None
    termination_prob: jax.Array | None


class ModelStep(NamedTuple):
    """One (sampled or mean) model transition in raw units.

    next_obs: [..., obs_dim], reward: [...] or None, termination_prob: [...] or None.
    """

    next_obs: jax.Array
    reward: jax.Array | None
    termination_prob: jax.Array | None
