"""`imagine`: a policy acting inside a learned model, differentiable end to end.

Used by MBPO (branched rollouts that feed SAC) and, later, by Dreamer, SVG, MAAC, MVE and MB-PPO
(gradients of imagined returns with respect to the policy and the start states). The model is
reached only through the dynamics-model protocol (`mbjax.models.base`); rewards and
terminations follow `transition`'s one contract and rule.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from mbjax.rollout.transition import (
    RewardFn,
    TerminationFn,
    check_reward_source,
    make_model_transition,
)

# policy(policy_params, obs [N, S], key) -> action [N, A]
Policy = Callable[[Any, jax.Array, jax.Array], jax.Array]


class Imagined(NamedTuple):
    """An imagined batch, time-major.

    obs: [H+1, N, S] (obs[0] = the starts); actions: [H, N, A]; rewards: [H, N];
    dones: [H, N] termination of each transition (a probability under the soft rule, 0/1 under
    the hard rule or a termination_fn); weights: [H, N] probability that row n is still alive
    when transition t starts (1 at t = 0): weight a transition's loss by it.
    """

    obs: jax.Array
    actions: jax.Array
    rewards: jax.Array
    dones: jax.Array
    weights: jax.Array


class _Carry(NamedTuple):
    x: jax.Array
    alive: jax.Array


def imagine(
    model: Any,
    model_state: Any,
    policy: Policy,
    policy_params: Any,
    starts: jax.Array,
    horizon: int,
    key: jax.Array,
    *,
    reward_fn: RewardFn | None = None,
    termination_fn: TerminationFn | None = None,
    termination: str = "soft",
    elites_only: bool = True,
    sample_noise: bool = True,
) -> Imagined:
    """Rolls `policy` for `horizon` (static) steps from `starts: [N, S]` through the model.

    Each step every row goes through a uniformly drawn member (elites by default): rows are
    shuffled and split evenly over the M members (padded when N is not a multiple of M), so a
    step costs one batched model call on ~N rows, not N x M; row n of every output always
    continues row n of `starts`. sample_noise: the model's aleatoric sample (False: means).
    termination: "soft" (survival shrinks by 1 - p, differentiable) or "hard" (stop at p > 0.5).
    Gradients flow to `policy_params`, `starts` and the model's state.
    """
    check_reward_source(model, reward_fn, "imagine")
    if starts.ndim != 2 or starts.shape[-1] != model.state_size:
        raise ValueError(f"imagine: starts must be [N, {model.state_size}], got {starts.shape}")
    transition = make_model_transition(model, reward_fn, termination_fn, termination)
    n, size = starts.shape
    m = model.num_elites if elites_only else model.num_members
    c = -(-n // m)  # rows per member (padded)
    members = model.elites(model_state) if elites_only else None

    def body(carry: _Carry, k: jax.Array):
        k_perm, k_act, k_noise = jax.random.split(k, 3)
        action = policy(policy_params, carry.x, k_act)
        # Slot s holds row order[s] % n; the padding slots (order >= n) repeat rows and their
        # outputs are dropped. inv[i]: the slot holding row i.
        order = jax.random.permutation(k_perm, c * m)
        rows = order % n
        inv = jnp.argsort(order)[:n]
        out = transition(
            model_state, carry.x[rows].reshape(m, c, size),
            action[rows].reshape(m, c, action.shape[-1]),
            k_noise if sample_noise else None, members,
        )
        out = jax.tree_util.tree_map(lambda v: v.reshape((c * m,) + v.shape[2:])[inv], out)
        ys = (out.next_obs, action, out.reward, out.done, carry.alive)
        return _Carry(out.next_obs, carry.alive * (1.0 - out.done)), ys

    init = _Carry(starts, jnp.ones((n,), starts.dtype))
    _, (xs, actions, rewards, dones, weights) = jax.lax.scan(
        body, init, jax.random.split(key, horizon)
    )
    return Imagined(
        obs=jnp.concatenate([starts[None], xs], axis=0),
        actions=actions, rewards=rewards, dones=dones, weights=weights,
    )
