"""MAAC's gradient step on a SAC learner state: SAC's critic and temperature losses, the
pathwise actor objective of `mbjax.agents.pathwise` in place of SAC's one-step actor loss.

Shapes: B = SAC batch (real + model transitions), N = start states (real), H = horizon,
C = critics. The networks, the tanh-Gaussian, the critic step (`update.critic_gradients`: soft
Bellman targets from the target critics), `losses.alpha_loss` and the Adam/Polyak step
(`update.apply_gradients`) are SAC's (`mbjax.agents.sac`); the state is SAC's
`SACState`, so SAC's grid leaves and `sac.make_policy` work on MAAC runs unchanged.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from mbjax.agents import pathwise
from mbjax.agents.sac import SACState, distribution, losses
from mbjax.agents.sac.update import (
    LearnerParts,
    apply_gradients,
    critic_gradients,
    maybe_normalize,
)
from mbjax.types import Transition


class ImaginationSetup(NamedTuple):
    """What the actor imagines with: a protocol model, horizon H, the known reward /
    termination functions (None: the model's heads) and the gradient clipping norm."""

    model: Any
    horizon: int
    reward_fn: Any
    termination_fn: Any
    max_grad_norm: float


def actor_objective(parts: LearnerParts, setup: ImaginationSetup, policy_params: Any,
                    state: SACState, model_state: Any, starts: jax.Array, alpha: jax.Array,
                    key: jax.Array) -> tuple[jax.Array, tuple]:
    """-J (a loss) for starts [N, S]; aux: (PathwiseTerms [N], log pi of the first actions [N]).

    log pi(a_t|s_t) along the imagined path is re-evaluated from the stored actions
    (`distribution.log_prob`, whose arctanh clips actions to 1 - 1e-6 of the bounds)."""
    norm = lambda obs: maybe_normalize(parts, state.obs_norm, obs)
    dist = lambda p, obs: parts.nets.policy_apply(p, norm(obs))
    hp = state.hparams

    def policy(p, obs, k):
        return distribution.sample_and_log_prob(*dist(p, obs), k)[0]

    def log_prob(obs, actions):  # [H, N, S], [H, N, A] -> [H, N]
        return distribution.log_prob(*dist(policy_params, obs), actions)

    def soft_q(obs, k):  # the end state's soft value [N]
        action, lp = distribution.sample_and_log_prob(*dist(policy_params, obs), k)
        q = jnp.min(parts.nets.critic_apply(state.critic_params, norm(obs), action), axis=0)
        return q - alpha * lp

    j, (terms, im) = pathwise.imagined_objective(
        setup.model, model_state, policy, policy_params, starts, setup.horizon, key,
        hp.discount, reward_fn=setup.reward_fn, termination_fn=setup.termination_fn,
        terminal_value=soft_q, log_prob=log_prob, alpha=alpha, reward_scale=hp.reward_scale,
    )
    return -j, (terms, log_prob(im.obs[:1], im.actions[:1])[0])


def update(parts: LearnerParts, setup: ImaginationSetup, state: SACState, model_state: Any,
           batch: Transition, starts: jax.Array, key: jax.Array) -> tuple[SACState, dict]:
    """One MAAC step: critics on `batch` [B] (SAC's loss), the actor on the pathwise objective
    from `starts` [N] (clipped), the temperature on the starts' entropy; all gradients at the
    current parameters, then Polyak-averaged target critics (as SAC's update)."""
    k_critic, k_actor = jax.random.split(key)
    hp = state.hparams
    alpha = jnp.exp(state.log_alpha)
    c_loss, c_aux, c_grads = critic_gradients(parts, state, batch, alpha, k_critic)
    (a_loss, (terms, log_prob)), p_grads = jax.value_and_grad(
        lambda p: actor_objective(parts, setup, p, state, model_state, starts, alpha, k_actor),
        has_aux=True)(state.policy_params)
    p_grads, grad_norm = pathwise.clip_gradients(p_grads, setup.max_grad_norm)
    t_loss, t_grad = jax.value_and_grad(losses.alpha_loss)(state.log_alpha, log_prob,
                                                           hp.target_entropy)
    new_state = apply_gradients(parts, state, c_grads, p_grads, t_grad)
    metrics = {
        "critic_loss": c_loss, "actor_loss": a_loss, "alpha_loss": t_loss, "alpha": alpha,
        "entropy": -jnp.mean(log_prob), "actor_grad_norm": grad_norm,
        "pathwise_model_return": jnp.mean(terms.model_return),
        "pathwise_terminal": jnp.mean(terms.terminal), **c_aux,
    }
    return new_state, metrics
