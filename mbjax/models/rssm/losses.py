"""The world-model losses (DreamerV3, Hafner et al. 2023, sec. "World model learning").

Per time step [B, T] (then a weighted mean over sequences and time):

    L = pred_scale * (L_rec + L_rew + L_con) + kl_dyn_scale * L_dyn + kl_rep_scale * L_rep

    L_rec  vector obs: sum over dims of (decoder(feat) - symlog(obs))**2 (symlog MSE);
           images: sum over pixels and channels of (decoder(feat) - (obs / 255 - 0.5))**2
           (summed, not averaged, over dims as DreamerV3: the reconstruction then outweighs the
           free bits and the latent carries the observation)
    L_rew  cross-entropy of the reward head's logits against twohot(symlog(reward))
    L_con  Bernoulli negative log-likelihood of the continue flag (1 - terminated)
    L_dyn  max(free_bits, KL(sg(posterior) || prior)): trains the prior towards the posterior
    L_rep  max(free_bits, KL(posterior || sg(prior))): trains the posterior (the
           representation) to be predictable, with a small scale so it stays informative

KL balancing (separate stop-gradients and scales) lets the prior move faster than the posterior
regularizes itself. Free bits: clipping each KL from below at `free_bits` nats stops its gradient
where it is already small, so the model does not collapse the latent onto the prior; below the
threshold the term is the constant free_bits with a zero gradient.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from mbjax.models.rssm import latent as lat
from mbjax.models.rssm.config import RSSMConfig
from mbjax.models.rssm.transforms import symlog


class KLTerms(NamedTuple):
    """Per-step KL losses [...]: dyn and rep after free bits, and the raw KL(post || prior)."""

    dyn: jax.Array
    rep: jax.Array
    kl: jax.Array


def kl_balance(config: RSSMConfig, post: jax.Array, prior: jax.Array) -> KLTerms:
    """KL balancing with free bits for stats [..., *] (see `latent`) -> KLTerms of [...]."""
    sg = jax.lax.stop_gradient
    dyn = jnp.maximum(config.free_bits, lat.kl(config, sg(post), prior))
    rep = jnp.maximum(config.free_bits, lat.kl(config, post, sg(prior)))
    return KLTerms(dyn, rep, lat.kl(config, sg(post), sg(prior)))


def reconstruction_loss(config: RSSMConfig, recon: jax.Array, obs: jax.Array) -> jax.Array:
    """Squared error summed over observation dims: recon, obs [B, T, *obs_shape] -> [B, T]."""
    if config.encoder == "conv":
        target = obs.astype(jnp.float32) / 255.0 - 0.5
        return jnp.sum((recon - target) ** 2, axis=(-3, -2, -1))
    return jnp.sum((recon - symlog(obs.astype(jnp.float32))) ** 2, -1)


def continue_loss(logit: jax.Array, cont: jax.Array) -> jax.Array:
    """Bernoulli NLL of cont [...] in {0, 1} under sigmoid(logit [...]) -> [...]."""
    return -(cont * jax.nn.log_sigmoid(logit) + (1.0 - cont) * jax.nn.log_sigmoid(-logit))


class LossTerms(NamedTuple):
    """Per-step loss terms [B, T] (see the module docstring)."""

    rec: jax.Array
    rew: jax.Array
    con: jax.Array
    dyn: jax.Array
    rep: jax.Array
    kl: jax.Array


def total_loss(config: RSSMConfig, terms: LossTerms, weight: jax.Array) -> tuple[jax.Array, dict]:
    """The scalar loss: weighted mean over [B, T] of the scaled terms, and each term's mean.

    weight [B]: 1 for a sequence to train on, 0 for an invalid or non-finite one."""
    per_step = (config.pred_scale * (terms.rec + terms.rew + terms.con)
                + config.kl_dyn_scale * terms.dyn + config.kl_rep_scale * terms.rep)
    w = jnp.broadcast_to(weight[:, None], per_step.shape)
    denom = jnp.maximum(jnp.sum(w), 1.0)

    def mean(x: jax.Array) -> jax.Array:
        return jnp.sum(x * w) / denom

    metrics = {f"{name}_loss": mean(value) for name, value in terms._asdict().items()}
    loss = mean(per_step)
    metrics["loss"] = loss
    return loss, metrics
