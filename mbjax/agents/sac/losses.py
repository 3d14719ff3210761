"""SAC losses as pure functions of parameters and a batch of (already normalised) transitions.

Shapes: B = batch, C = critics, A = action size.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from mbjax.agents.sac import distribution

PolicyApply = Callable[[object, jax.Array], tuple[jax.Array, jax.Array]]
CriticApply = Callable[[object, jax.Array, jax.Array], jax.Array]


class SACNetworks(NamedTuple):
    """policy_apply(params, obs [B, D]) -> (mean, log_std) [B, A];
    critic_apply(params, obs [B, D], action [B, A]) -> q [C, B]."""

    policy_apply: PolicyApply
    critic_apply: CriticApply


def critic_target(
    reward: jax.Array,
    terminated: jax.Array,
    next_q: jax.Array,
    next_log_prob: jax.Array,
    alpha: jax.Array,
    discount: jax.Array,
    reward_scale: jax.Array,
) -> jax.Array:
    """Soft Bellman target y = s*r + gamma * (1 - terminated) * (min_c Q'_c - alpha * log pi).

    reward, terminated, next_log_prob: [B]; next_q: [C, B] from the target critics -> [B].
    Only termination stops bootstrapping; a time-limit truncation is not terminal.
    """
    next_v = jnp.min(next_q, axis=0) - alpha * next_log_prob
    return reward_scale * reward + discount * (1.0 - terminated) * next_v


def regression_critic_loss(critic_params, nets: SACNetworks,
                           targets) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Sum over critics of 0.5 * the weighted mean squared error of Q(obs, action) against the
    fixed `targets` (an `update.CriticTargets`: obs [N, D], action [N, A], target [N],
    weight [N]). With SAC's one-step targets (`update.one_step_targets`) and unit weights this
    is SAC's critic loss.

    Returns (loss, aux metrics)."""
    q = nets.critic_apply(critic_params, targets.obs, targets.action)  # [C, N]
    w = targets.weight / jnp.sum(targets.weight)
    loss = 0.5 * jnp.sum(jnp.sum(w * (q - targets.target[None]) ** 2, axis=-1))
    return loss, {"q_mean": jnp.sum(w * jnp.mean(q, axis=0)),
                  "target_q_mean": jnp.sum(w * targets.target)}


def actor_loss(
    policy_params,
    critic_params,
    nets: SACNetworks,
    obs: jax.Array,
    alpha: jax.Array,
    key: jax.Array,
) -> tuple[jax.Array, jax.Array]:
    """E[alpha * log pi(a|s) - min_c Q_c(s, a)], a ~ pi (reparameterised).

    Returns (loss, log_prob [B])."""
    mean, log_std = nets.policy_apply(policy_params, obs)
    action, log_prob = distribution.sample_and_log_prob(mean, log_std, key)
    q = jnp.min(nets.critic_apply(critic_params, obs, action), axis=0)
    return jnp.mean(alpha * log_prob - q), log_prob


def alpha_loss(log_alpha: jax.Array, log_prob: jax.Array, target_entropy: jax.Array) -> jax.Array:
    """log_alpha * (H(pi) - H_target), with H(pi) estimated as -log_prob and held fixed.

    The gradient with respect to log_alpha is (entropy - target), so gradient descent raises the
    temperature while the policy's entropy is below the target and lowers it while above.
    """
    entropy = -jax.lax.stop_gradient(log_prob)
    return jnp.mean(log_alpha * (entropy - target_entropy))
