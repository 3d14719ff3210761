"""SAC's gradient step as module-level functions of explicit static parts.

`make_sac` binds a `LearnerParts` to `update` / `update_many` (functools.partial); they stay pure
and jittable, with no Python control flow on traced values, so they run inside `lax.scan` / `vmap`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from mbjax import validation
from mbjax.agents.sac import distribution, losses
from mbjax.agents.sac import normalizer as obs_normalizer
from mbjax.agents.sac.state import SACState
from mbjax.types import Transition

UpdateFn = Callable[[SACState, Transition, jax.Array], tuple[SACState, dict[str, jax.Array]]]


class CriticTargets(NamedTuple):
    """What the critics regress onto in one update: Q(obs, action) -> target, weighted.

    obs: [N, obs_size] (normalized as the critics see it); action: [N, A]; target: [N]
    (gradient-free); weight: [N] (>= 0; the loss is the weighted mean). SAC's own targets have
    N = B and unit weights; value expansion (`mbjax.agents.sac.expansion`) adds model states.
    info: scalars reported with the update's metrics (STEVE's mean horizon weight).
    """

    obs: jax.Array
    action: jax.Array
    target: jax.Array
    weight: jax.Array
    info: dict = {}  # noqa: RUF012 (never mutated)


# targets_fn(parts, state, batch (raw, as sampled), alpha, key) -> CriticTargets
TargetsFn = Callable[["LearnerParts", SACState, Transition, jax.Array, jax.Array], CriticTargets]


class LearnerParts(NamedTuple):
    """The static pieces a SAC learner's functions share (built once by `make_sac`)."""

    nets: losses.SACNetworks
    policy_opt: optax.GradientTransformation
    critic_opt: optax.GradientTransformation
    alpha_opt: optax.GradientTransformation
    obs_size: int
    action_size: int
    normalize_observations: bool


def maybe_normalize(
    parts: LearnerParts, stats: obs_normalizer.RunningMeanStd, obs: jax.Array
) -> jax.Array:
    """obs [..., obs_size] normalized by `stats` when `normalize_observations` is on."""
    if parts.normalize_observations:
        return obs_normalizer.normalize(stats, obs)
    return obs


def check_batch(parts: LearnerParts, batch: Transition) -> None:
    """Trace-time shape checks: a clear error instead of a broadcast deep inside the losses."""
    if not isinstance(batch, Transition):
        raise ValueError(f"SAC update: batch must be a Transition, got {type(batch).__name__}")
    b = batch.reward.shape
    expected = {
        "obs": b + (parts.obs_size,),
        "action": b + (parts.action_size,),
        "next_obs": b + (parts.obs_size,),
        "terminated": b,
    }
    if len(b) != 1:
        raise ValueError(f"SAC update: batch.reward must be [B], got shape {b}")
    for name, shape in expected.items():
        got = getattr(batch, name).shape
        if got != shape:
            raise ValueError(f"SAC update: batch.{name} must have shape {shape}, got {got}")


def prepare_batch(parts: LearnerParts, state: SACState, batch: Transition) -> Transition:
    """The batch as the losses see it: float32 leaves, observations normalized."""
    return batch.replace(
        obs=maybe_normalize(parts, state.obs_norm, batch.obs.astype(jnp.float32)),
        next_obs=maybe_normalize(parts, state.obs_norm, batch.next_obs.astype(jnp.float32)),
        action=batch.action.astype(jnp.float32),
        reward=batch.reward.astype(jnp.float32),
        terminated=batch.terminated.astype(jnp.float32),
    )


def one_step_targets(parts: LearnerParts, state: SACState, batch: Transition, alpha: jax.Array,
                     key: jax.Array) -> CriticTargets:
    """SAC's soft Bellman targets on the batch itself (`losses.critic_target`), unit weights."""
    batch = prepare_batch(parts, state, batch)
    mean, log_std = parts.nets.policy_apply(state.policy_params, batch.next_obs)
    next_action, next_log_prob = distribution.sample_and_log_prob(mean, log_std, key)
    next_q = parts.nets.critic_apply(state.target_critic_params, batch.next_obs, next_action)
    hp = state.hparams
    target = losses.critic_target(batch.reward, batch.terminated, next_q, next_log_prob, alpha,
                                  hp.discount, hp.reward_scale)
    return CriticTargets(obs=batch.obs, action=batch.action,
                         target=jax.lax.stop_gradient(target), weight=jnp.ones_like(target))


def critic_gradients(parts: LearnerParts, state: SACState, batch: Transition, alpha: jax.Array,
                     key: jax.Array, targets_fn: TargetsFn = one_step_targets):
    """(loss, aux metrics incl. the targets' info, gradients) of the critics' regression onto
    targets_fn's targets for the raw `batch` [B] (SAC's and MAAC's critic step)."""
    targets = targets_fn(parts, state, batch, alpha, key)
    (loss, aux), grads = jax.value_and_grad(losses.regression_critic_loss, has_aux=True)(
        state.critic_params, parts.nets, targets)
    return loss, {**aux, **targets.info}, grads


def apply_gradients(parts: LearnerParts, state: SACState, critic_grads: Any, policy_grads: Any,
                    alpha_grad: jax.Array) -> SACState:
    """One Adam step of critics, policy and temperature from gradients taken at `state`, then
    the target critics' Polyak averaging with rate tau and `step` + 1 (SAC's and MAAC's)."""
    tau = state.hparams.tau
    c_updates, critic_opt_state = parts.critic_opt.update(critic_grads, state.critic_opt_state)
    critic_params = optax.apply_updates(state.critic_params, c_updates)
    p_updates, policy_opt_state = parts.policy_opt.update(policy_grads, state.policy_opt_state)
    t_updates, alpha_opt_state = parts.alpha_opt.update(alpha_grad, state.alpha_opt_state)
    return state.replace(
        policy_params=optax.apply_updates(state.policy_params, p_updates),
        critic_params=critic_params,
        target_critic_params=jax.tree_util.tree_map(
            lambda t, p: (1.0 - tau) * t + tau * p, state.target_critic_params, critic_params),
        policy_opt_state=policy_opt_state,
        critic_opt_state=critic_opt_state,
        alpha_opt_state=alpha_opt_state,
        log_alpha=optax.apply_updates(state.log_alpha, t_updates),
        step=state.step + 1,
    )


def update(
    parts: LearnerParts, state: SACState, batch: Transition, key: jax.Array,
    targets_fn: TargetsFn = one_step_targets,
) -> tuple[SACState, dict[str, jax.Array]]:
    """One gradient step on critics, actor and temperature. batch leaves: [B, ...].

    All three gradients are taken at the current parameters (as in the original SAC), then
    the target critics move by Polyak averaging with rate tau. targets_fn: what the critics
    regress onto (SAC's one-step targets by default; MVE / STEVE expand them with a model).
    """
    check_batch(parts, batch)
    k_critic, k_actor = jax.random.split(key)
    hp = state.hparams
    alpha = jnp.exp(state.log_alpha)
    c_loss, c_aux, c_grads = critic_gradients(parts, state, batch, alpha, k_critic, targets_fn)
    batch = prepare_batch(parts, state, batch)
    (a_loss, log_prob), p_grads = jax.value_and_grad(losses.actor_loss, has_aux=True)(
        state.policy_params, state.critic_params, parts.nets, batch.obs, alpha, k_actor
    )
    t_loss, t_grad = jax.value_and_grad(losses.alpha_loss)(
        state.log_alpha, log_prob, hp.target_entropy
    )

    new_state = apply_gradients(parts, state, c_grads, p_grads, t_grad)
    metrics = {
        "critic_loss": c_loss,
        "actor_loss": a_loss,
        "alpha_loss": t_loss,
        "alpha": alpha,
        "entropy": -jnp.mean(log_prob),
        **c_aux,
    }
    return new_state, metrics


def update_many(
    update_fn: UpdateFn,
    state: SACState,
    sample_fn: Callable[[jax.Array], Transition],
    key: jax.Array,
    num_updates: int,
) -> tuple[SACState, dict[str, jax.Array]]:
    """`num_updates` (static int) `update_fn` steps in one lax.scan; batch_k = sample_fn(key_k).

    Returns the final state and the metrics averaged over the updates.
    """
    validation.check_int("update_many: num_updates", num_updates)

    def body(s: SACState, k: jax.Array):
        k_sample, k_update = jax.random.split(k)
        return update_fn(s, sample_fn(k_sample), k_update)

    state, metrics = jax.lax.scan(body, state, jax.random.split(key, num_updates))
    return state, jax.tree_util.tree_map(lambda m: jnp.mean(m, axis=0), metrics)
