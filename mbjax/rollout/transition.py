"""One reward contract, one termination rule, one accumulation of returns: shared by
propagation (planning), `imagine` (policy learning) and the ground-truth env objective.

Reward contract: `reward_fn(obs [S], action [A], next_obs [S]) -> []`, written for ONE
transition (as `mbjax.envs.task_fns` gives them) and vmapped here over any leading axes. Without
a reward_fn the model's reward head is used (`model.has_reward`).

Termination rule: `termination_fn(obs, action, next_obs) -> done` (per transition, 0/1), or the
model's termination head, whose probability p is applied
  soft: the survival weight shrinks by (1 - p) each step (an expectation over terminations),
  hard: a row stops when p > 0.5 (one sampled future, as MBPO stores it).
Rewards after a termination are masked; the terminating transition's reward counts.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from mbjax import validation
from mbjax.models.base import check_model

RewardFn = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]
TerminationFn = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]
TERMINATION_RULES = ("soft", "hard")


class StepOut(NamedTuple):
    """One transition of many rows: next_obs [..., S], reward [...], done [...] (a termination
    probability under the soft rule, 0/1 under the hard rule or from a termination_fn)."""

    next_obs: jax.Array
    reward: jax.Array
    done: jax.Array


class Returns(NamedTuple):
    """Running (discounted) returns of many rows: alive, total [...] and scale [] = discount^t."""

    alive: jax.Array
    total: jax.Array
    scale: jax.Array


def per_transition(fn: Callable, obs: jax.Array, action: jax.Array, next_obs: jax.Array):
    """Applies a one-transition fn(obs [S], action [A], next_obs [S]) over common leading axes."""
    lead = obs.shape[:-1]
    flat = [x.reshape((-1,) + x.shape[len(lead):]) for x in (obs, action, next_obs)]
    out = jax.vmap(fn)(*flat)
    # In the states' float dtype (bool terminations become 0/1; float64 stays float64).
    return jnp.asarray(out).astype(obs.dtype).reshape(lead)


def init_returns(shape: tuple[int, ...]) -> Returns:
    return Returns(jnp.ones(shape), jnp.zeros(shape), jnp.ones(()))


def accumulate(acc: Returns, reward: jax.Array, done: jax.Array, discount: Any) -> Returns:
    """Adds this step's reward weighted by the survival probability (0/1 under hard rules),
    then applies the termination.

    `where` also masks dead rows: a model or env stepped past a termination may produce NaN
    rewards, and NaN * 0 is NaN.
    """
    total = acc.total + jnp.where(acc.alive > 0, acc.alive * acc.scale * reward, 0.0)
    return Returns(acc.alive * (1.0 - done), total, acc.scale * discount)


def check_reward_source(model: Any, reward_fn: RewardFn | None, where: str) -> None:
    """A reward must come from somewhere: a reward_fn or the model's reward head."""
    check_model(model, where)
    if reward_fn is None and not model.has_reward:
        raise ValueError(
            f"{where}: no reward: pass reward_fn(obs, action, next_obs) or use a model with a "
            "reward head (e.g. EnsembleConfig.predict_reward=True)"
        )


def check_termination_rule(rule: str) -> None:
    validation.check_choice("termination", rule, TERMINATION_RULES)


def make_model_transition(
    model: Any,
    reward_fn: RewardFn | None = None,
    termination_fn: TerminationFn | None = None,
    termination: str = "soft",
) -> Callable[..., StepOut]:
    """Returns `transition(model_state, x [M, R, S], a [M, R, A], key | None, members [M] | None)
    -> StepOut [M, R]`: the model's step with the reward contract and termination rule above."""
    check_termination_rule(termination)
    use_head = termination_fn is None and model.has_termination

    def transition(model_state, x, a, key, members=None) -> StepOut:
        step = model.step(model_state, x, a, key, members)
        reward = step.reward if reward_fn is None else per_transition(reward_fn, x, a,
                                                                      step.next_obs)
        if termination_fn is not None:
            done = per_transition(termination_fn, x, a, step.next_obs)
        elif use_head:
            p = step.termination_prob
            done = p if termination == "soft" else (p > 0.5).astype(jnp.float32)
        else:
            done = jnp.zeros(x.shape[:-1], jnp.float32)
        return StepOut(step.next_obs, reward, done)

    return transition
