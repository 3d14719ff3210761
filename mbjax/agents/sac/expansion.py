"""Model-based value expansion for SAC's critics: MVE (Feinberg et al. 2018) and STEVE
(Buckman et al. 2018), as `targets_fn`s of the SAC update (`update.CriticTargets`).

Both continue every real transition (s0, a0, r0, s1) of a batch through the learned model with
the current policy, H steps from the real s1:

    a_k ~ pi(. | s_k),  (s_{k+1}, r_k, d_k) = model(s_k, a_k)    k = 1..H,   a_{H+1} ~ pi(s_{H+1})

(a_1 is drawn once per row, as SAC's own target draws it, and shared by the members), with
alive_1 = 1 - terminated_0, alive_{k+1} = alive_k (1 - d_k) (d_k a 0/1 termination or the head's
probability). Unrolling the soft Bellman equation i model steps gives the horizon-i target

    T_i = s r0 + sum_{k=1}^{i} gamma^k alive_k (s r_k - alpha log pi(a_k|s_k))
               + gamma^{i+1} alive_{i+1} (Q'(s_{i+1}, a_{i+1}) - alpha log pi(a_{i+1}|s_{i+1}))

(s: SAC's reward scale, Q': the target critics). T_0 is SAC's one-step target.

- **MVE** trains Q on every prefix of one imagined trajectory (the paper's TD-k trick): Q(s_t,
  a_t) for t = 0..H regresses onto the H-step target from s_t (t = 0: the real pair), weighted by
  the probability alive_t that s_t is reached. One elite, drawn per update, rolls all rows.
- **STEVE** trains only Q(s0, a0), onto the inverse-variance weighted mean of T_0..T_H: every
  elite rolls every row (the model and reward ensemble) and T_i is formed with every target
  critic (the Q ensemble); mean_i uses SAC's min over critics (so H = 0 is exactly SAC's
  target), var_i is the variance over (member, critic) pairs, and w_i = var_i^-1 / sum_j var_j^-1.

Shapes: B rows of the batch, M' members rolling them, C critics, H the horizon.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from mbjax.agents.sac import distribution
from mbjax.agents.sac.state import SACState
from mbjax.agents.sac.update import CriticTargets, LearnerParts, maybe_normalize, prepare_batch
from mbjax.rollout.transition import make_model_transition
from mbjax.types import Transition

KINDS = ("none", "mve", "steve")
# The smallest variance STEVE divides by (a horizon whose targets all agree gets a large but
# finite weight).
MIN_VARIANCE = 1e-10


class ExpansionRollout(NamedTuple):
    """The model's continuation of a batch, time-major over j = 1..H+1.

    obs: [H+1, M', B, S] (raw s_j); action, log_prob: [H+1, M', B(, A)] (a_j ~ pi(s_j));
    reward, done: [H, M', B] (r_k, d_k of the model transition from s_k, k = 1..H).
    """

    obs: jax.Array
    action: jax.Array
    log_prob: jax.Array
    reward: jax.Array
    done: jax.Array


def _act(parts: LearnerParts, state: SACState, obs: jax.Array, key: jax.Array):
    """(action, log_prob) ~ pi(. | obs) for raw obs [..., S]."""
    mean, log_std = parts.nets.policy_apply(state.policy_params,
                                            maybe_normalize(parts, state.obs_norm, obs))
    return distribution.sample_and_log_prob(mean, log_std, key)


def expansion_rollout(parts: LearnerParts, state: SACState, transition: Callable[..., Any],
                      model_state: Any, members: jax.Array, next_obs: jax.Array, horizon: int,
                      key: jax.Array) -> ExpansionRollout:
    """Rolls members [M'] (each on every row) `horizon` (static) steps from next_obs [B, S].

    a_1 is drawn with `key` itself on [B, A], exactly as SAC's one-step target draws it.
    transition: `rollout.transition.make_model_transition`'s function.
    """
    m = members.shape[0]
    a1, logp1 = _act(parts, state, next_obs, key)
    x1 = jnp.broadcast_to(next_obs, (m,) + next_obs.shape)
    a1 = jnp.broadcast_to(a1, (m,) + a1.shape)
    logp1 = jnp.broadcast_to(logp1, (m,) + logp1.shape)

    def body(carry, k):
        x, a, logp = carry
        k_model, k_act = jax.random.split(k)
        out = transition(model_state, x, a, k_model, members)
        a_next, logp_next = _act(parts, state, out.next_obs, k_act)
        return (out.next_obs, a_next, logp_next), (x, a, logp, out.reward, out.done)

    keys = jax.random.split(jax.random.fold_in(key, 1), horizon)
    (x, a, logp), (xs, acts, logps, rewards, dones) = jax.lax.scan(body, (x1, a1, logp1), keys)
    cat = lambda seq, last: jnp.concatenate([seq, last[None]], axis=0)
    return ExpansionRollout(obs=cat(xs, x), action=cat(acts, a), log_prob=cat(logps, logp),
                            reward=rewards, done=dones)


class Scalars(NamedTuple):
    """The per-update numbers the targets use: alpha (temperature), discount, reward scale."""

    alpha: jax.Array
    discount: jax.Array
    scale: jax.Array


def alive_probs(done: jax.Array, terminated0: jax.Array) -> jax.Array:
    """alive_j for j = 1..H+1: [H+1, M', B] from done [H, M', B] and terminated0 [B]."""
    first = jnp.broadcast_to(1.0 - terminated0, done.shape[1:])
    later = first * jnp.cumprod(1.0 - done, axis=0)
    return jnp.concatenate([first[None], later], axis=0)


def horizon_targets(roll: ExpansionRollout, reward0: jax.Array, terminated0: jax.Array,
                    target_q: jax.Array, c: Scalars) -> jax.Array:
    """T_i for i = 0..H under every target critic: [C, H+1, M', B].

    target_q: [C, H+1, M', B], Q'_c(s_j, a_j) for j = 1..H+1; reward0, terminated0: [B].
    """
    horizon = roll.reward.shape[0]
    alive = alive_probs(roll.done, terminated0)  # [H+1, M', B]
    gamma = c.discount ** jnp.arange(1, horizon + 2, dtype=jnp.float32)[:, None, None]
    step = gamma[:-1] * alive[:-1] * (c.scale * roll.reward - c.alpha * roll.log_prob[:-1])
    partial = jnp.concatenate([jnp.zeros((1,) + step.shape[1:], step.dtype),
                               jnp.cumsum(step, axis=0)], axis=0)
    boot = gamma * alive * (target_q - c.alpha * roll.log_prob)  # [C, H+1, M', B]
    return c.scale * reward0 + partial + boot


def steve_combine(targets: jax.Array, clipped: jax.Array) -> tuple[jax.Array, jax.Array]:
    """STEVE's target [B] and weights [H+1, B] (summing to one over horizons).

    targets: [C, H+1, M', B] (T_i per critic and member); clipped: [H+1, M', B] (T_i with the
    min over critics). mean_i = mean over members of `clipped`; var_i = variance of `targets`
    over (critic, member).
    """
    mean = jnp.mean(clipped, axis=1)
    var = jnp.var(jnp.moveaxis(targets, 0, 1).reshape(targets.shape[1], -1, targets.shape[-1]),
                  axis=1)
    inverse = 1.0 / jnp.maximum(var, MIN_VARIANCE)
    weights = inverse / jnp.sum(inverse, axis=0, keepdims=True)
    return jnp.sum(weights * mean, axis=0), weights


def mve_prefix_targets(roll: ExpansionRollout, reward0: jax.Array, terminated0: jax.Array,
                       bootstrap_q: jax.Array, c: Scalars) -> jax.Array:
    """MVE's targets y_t for t = 0..H along one member's trajectory (M' = 1): [H+1, B].

    bootstrap_q: [B], min_c Q'_c(s_{H+1}, a_{H+1}). Backwards from the soft value
    u_{H+1} = Q' - alpha log pi(a_{H+1}): y_k = s r_k + gamma (1 - d_k) u_{k+1},
    u_k = y_k - alpha log pi(a_k | s_k); y_0 = s r0 + gamma (1 - terminated0) u_1.
    """
    logp = roll.log_prob[:, 0]  # [H+1, B]
    u_last = bootstrap_q - c.alpha * logp[-1]

    def back(u_next, xs):
        reward, done, logp_k = xs
        y = c.scale * reward + c.discount * (1.0 - done) * u_next
        return y - c.alpha * logp_k, y

    u1, ys = jax.lax.scan(back, u_last, (roll.reward[:, 0], roll.done[:, 0], logp[:-1]),
                          reverse=True)
    y0 = c.scale * reward0 + c.discount * (1.0 - terminated0) * u1
    return jnp.concatenate([y0[None], ys], axis=0)


def _target_q(parts: LearnerParts, state: SACState, obs: jax.Array, action: jax.Array):
    """Q'_c at raw obs [..., S], action [..., A] -> [C, ...] (flattened through the critic)."""
    lead = obs.shape[:-1]
    q = parts.nets.critic_apply(
        state.target_critic_params,
        maybe_normalize(parts, state.obs_norm, obs.reshape(-1, obs.shape[-1])),
        action.reshape(-1, action.shape[-1]),
    )
    return q.reshape((q.shape[0],) + lead)


def make_targets_fn(kind: str, model: Any, model_state: Any, horizon: int,
                    reward_fn: Callable | None, termination_fn: Callable | None):
    """The `targets_fn(parts, state, batch, alpha, key) -> CriticTargets` of `kind` ("mve" or
    "steve") with the model's current state (fixed for the updates that use it)."""
    if kind not in KINDS[1:]:
        raise ValueError(f"value expansion kind {kind!r} is invalid; allowed: mve, steve")
    transition = make_model_transition(model, reward_fn, termination_fn, "soft")

    def targets_fn(parts: LearnerParts, state: SACState, batch: Transition, alpha: jax.Array,
                   key: jax.Array) -> CriticTargets:
        # `key` itself draws a_1 (as SAC's one-step target does), so H = 0 is SAC exactly.
        k_member = jax.random.fold_in(key, 2)
        elites = model.elites(model_state)
        members = (elites if kind == "steve" else
                   elites[jax.random.randint(k_member, (1,), 0, elites.shape[0])])
        raw = jax.tree_util.tree_map(lambda v: v.astype(jnp.float32), batch)
        roll = expansion_rollout(parts, state, transition, model_state, members, raw.next_obs,
                                 horizon, key)
        roll = jax.tree_util.tree_map(jax.lax.stop_gradient, roll)
        hp = state.hparams
        c = Scalars(alpha=alpha, discount=hp.discount, scale=hp.reward_scale)
        if kind == "steve":
            return _steve(parts, state, raw, roll, c)
        return _mve(parts, state, raw, roll, c)

    return targets_fn


def _steve(parts, state, raw: Transition, roll: ExpansionRollout, c: Scalars) -> CriticTargets:
    q = _target_q(parts, state, roll.obs, roll.action)  # [C, H+1, M', B]
    targets = horizon_targets(roll, raw.reward, raw.terminated, q, c)
    clipped = horizon_targets(roll, raw.reward, raw.terminated, jnp.min(q, axis=0), c)
    target, weights = steve_combine(targets, clipped)
    prepared = prepare_batch(parts, state, raw)
    horizons = jnp.arange(weights.shape[0], dtype=jnp.float32)
    return CriticTargets(
        obs=prepared.obs, action=prepared.action, target=jax.lax.stop_gradient(target),
        weight=jnp.ones_like(target),
        info={"expansion_mean_horizon": jnp.mean(jnp.sum(horizons[:, None] * weights, axis=0))},
    )


def _mve(parts, state, raw: Transition, roll: ExpansionRollout, c: Scalars) -> CriticTargets:
    horizon = roll.reward.shape[0]
    q_last = jnp.min(_target_q(parts, state, roll.obs[-1, 0], roll.action[-1, 0]), axis=0)
    ys = mve_prefix_targets(roll, raw.reward, raw.terminated, q_last, c)  # [H+1, B]
    alive = alive_probs(roll.done, raw.terminated)[:, 0]  # [H+1, B]: s_1..s_{H+1}
    obs = jnp.concatenate([raw.obs[None], roll.obs[:horizon, 0]], axis=0)
    action = jnp.concatenate([raw.action[None], roll.action[:horizon, 0]], axis=0)
    weight = jnp.concatenate([jnp.ones_like(alive[:1]), alive[:horizon]], axis=0)
    flat = lambda v: v.reshape((-1,) + v.shape[2:])
    return CriticTargets(
        obs=maybe_normalize(parts, state.obs_norm, flat(obs)), action=flat(action),
        target=jax.lax.stop_gradient(flat(ys)), weight=flat(weight),
    )


__all__ = [
    "KINDS", "ExpansionRollout", "Scalars", "alive_probs", "expansion_rollout",
    "horizon_targets", "make_targets_fn", "mve_prefix_targets", "steve_combine",
]
