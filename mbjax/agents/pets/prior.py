"""The policy prior of MPC with a learned terminal value (`TerminalValueConfig.policy_prior`).

TD-MPC2 (Hansen et al. 2024) puts a few trajectories of its learned policy among the planner's
candidates; LOOP (Sikchi et al. 2022) guides its MPC with the actor in the same way. The point is
the horizon: from the bottom of a sparse swing-up, random action sequences of H steps rarely
reach a state the value knows, while the actor, trained to maximise that value, proposes one.

Here the terminal value's SAC actor is rolled through the learned model (`rollout.imagine`) for
the planner's horizon from the current observation: row 0 takes the actor's deterministic
action, the other rows sample from it. The planner plans as usual; the prior's sequences are
then scored by the same objective (same key, so the same sampled futures) and the best one
replaces the plan, and the warm start (`planner_state.mean`), when it scores higher than the
best sequence the planner evaluated. Any sampling planner works unchanged: the prior only
competes with its result and seeds its next warm start.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from mbjax.agents.sac import SAC
from mbjax.planners.base import clip_actions
from mbjax.rollout import imagine
from mbjax.rollout.transition import RewardFn, TerminationFn


class PolicyPrior(NamedTuple):
    """What `policy_sequences` needs besides the run's state (static structure)."""

    critic: SAC
    model: Any
    horizon: int
    num: int  # sequences per plan (>= 1)
    reward_fn: RewardFn | None
    termination_fn: TerminationFn | None
    elites_only: bool


def policy_sequences(prior: PolicyPrior, model_state: Any, value_params: Any, obs: jax.Array,
                     key: jax.Array) -> jax.Array:
    """The actor's action sequences from obs [S] through the model: [num, H, A] in [-1, 1]
    (row 0 deterministic, the others sampled)."""
    deterministic = jnp.arange(prior.num)[:, None] == 0

    def act(params: Any, x: jax.Array, k: jax.Array) -> jax.Array:
        sampled = prior.critic.act(params, x, k)
        mode = prior.critic.act(params, x, k, deterministic=True)
        return jnp.where(deterministic, mode, sampled)

    starts = jnp.broadcast_to(obs, (prior.num, obs.shape[-1]))
    imagined = imagine(prior.model, model_state, act, value_params.actor_params, starts,
                       prior.horizon, key, reward_fn=prior.reward_fn,
                       termination_fn=prior.termination_fn, elites_only=prior.elites_only)
    return clip_actions(jnp.swapaxes(imagined.actions, 0, 1))


def with_policy_prior(prior: PolicyPrior, objective: Callable[[jax.Array], jax.Array],
                      model_state: Any, value_params: Any, obs: jax.Array, key: jax.Array,
                      actions: jax.Array, planner_state: Any,
                      info: dict) -> tuple[jax.Array, Any, dict]:
    """The planner's result (actions [H, A], planner_state, info) with the policy's best
    sequence in its place when that scores higher under `objective`. info gains
    `prior_used` ([] bool) and `prior_return` (the best policy sequence's value)."""
    if not hasattr(planner_state, "mean"):
        raise ValueError("TerminalValueConfig.policy_prior needs a sampling planner (its state's "
                         f"mean is the warm start); got state {type(planner_state).__name__}")
    candidates = policy_sequences(prior, model_state, value_params, obs, key)
    values = objective(candidates)
    best = jnp.argmax(values)
    use = values[best] > info["best_return"]
    actions = jnp.where(use, candidates[best], actions)
    planner_state = planner_state.replace(
        mean=jnp.where(use, candidates[best], planner_state.mean))
    info = {**info, "best_return": jnp.maximum(values[best], info["best_return"]),
            "prior_used": use, "prior_return": values[best]}
    return actions, planner_state, info


__all__ = ["PolicyPrior", "policy_sequences", "with_policy_prior"]
