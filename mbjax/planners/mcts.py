"""MCTS planning for discrete-action envs with `mctx` (Gumbel MuZero and MuZero search), over the
TRUE env or a LEARNED dynamics model.

Why mctx: it is DeepMind's maintained MCTS library written in JAX; the whole search (tree
arrays, selection, expansion, backup) is one jittable, vmappable function, so an episode of
MCTS control is a `lax.scan` and a batch of episodes is a `vmap`. mbjax does not reimplement
the search; it supplies what is needed to plan with a model:

* a `SearchModel`: how a node (one unbatched embedding) steps under an int action. Two exist:
  `env_search_model(env)` (the node is the env `State`; reward and termination are the env's,
  a time-limit truncation is not a termination) and `learned_search_model(model, transition,
  num_actions)` (the node is `ModelNode(obs [S], terminated [])`; the int action is one-hot
  encoded into the model's continuous action input; `transition` is
  `mbjax.rollout.make_model_transition(model, reward_fn, termination_fn, "hard")`, the one
  reward contract and termination rule; one member drawn per simulation, or the members' mean).
* the mctx `recurrent_fn` over a SearchModel: a terminated node stays absorbing (reward 0,
  discount 0), rewards count the terminating step, invalid actions are masked in EVERY node
  (mctx masks the root via `invalid_actions`; interior nodes get prior logits `-1e9` and a
  wrapped `qtransform` gives them Q = -1e9, so neither PUCT nor the Gumbel interior rule picks
  them; rollouts draw valid actions only).
* a leaf value (`rollout_policy`):
  - "uniform": the mean discounted return of `num_rollouts` uniform-random rollouts of
    `rollout_steps` steps.
  - "lookahead": ONE rollout of `lookahead_steps` steps of the one-step-lookahead policy on the
    uniform value (each step takes argmax_a r(s, a) + discount * V_uniform(s')): Bertsekas'
    rollout algorithm / level-1 nested Monte-Carlo search (Cazenave 2009).
  Why "lookahead" exists: on cart-pole the uniform value is blind to the cart position. A
  uniform policy drops the pole after ~21 steps from anywhere, so V_uniform is flat in x and
  xdot until the cart is within ~0.3 m of the track end (measured: 21.56 at x = 0 .. 1.8, 21.37
  at x = 2.0 moving out at 0.3 m/s, see benchmarks/mcts_cartpole.py). The search then keeps the
  pole up but lets the cart drift (a random walk of near-tied choices) until it leaves the
  track: every failed episode we traced of the 418/500 run (3 of 6, seed 0) ended with |x| >
  2.4, the pole still within 12 degrees. Reversing a drifting cart takes far longer than search
  depth + 21 steps. The lookahead policy balances for hundreds of steps, so its return sees
  the track's ends (500/500 in all 30 benchmark episodes: seeds 0-1, 16 and 32
  simulations). Its price: lookahead_steps x A x
  num_rollouts x rollout_steps model steps per leaf (100 x 2 x 2 x 25 by default), which is
  why the learned-model agent's presets keep "uniform" on CPU.
* common random numbers (`common_random_numbers`, default on): every leaf of one search draws
  its rollout actions from the same key, so sibling values differ by their states, not by
  rollout noise (a standard variance reduction for comparing alternatives).

Shapes: A = num_actions; an action is int32 `[]`; `invalid_actions` is bool `[A]` (True = not
allowed). mctx batches nodes `[B]`; `act` handles one root state; vmap it for many.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import mctx

from mbjax import acting, validation

MASKED_LOGIT = -1e9
ROLLOUT_POLICIES = ("uniform", "lookahead")
MEMBER_MODES = ("sample", "mean")


@dataclasses.dataclass(frozen=True)
class MCTSConfig:
    """MCTS with mctx over a SearchModel (the true env or a learned model).

    num_simulations: simulations per decision (static).
    max_depth: None (unbounded, mctx's default) or the maximum tree depth.
    algorithm: "gumbel_muzero" (`mctx.gumbel_muzero_policy`) or "muzero" (`mctx.muzero_policy`,
      PUCT with mctx's min-max normalised Q; acts by the visit counts).
    discount: per-step discount of the search and of the leaf rollouts, in (0, 1].
    rollout_policy: "uniform" or "lookahead" (see the module docstring).
    rollout_steps: length of each uniform rollout (0: leaf value 0). num_rollouts: uniform
      rollouts averaged per value.
    lookahead_steps: length of the lookahead rollout (rollout_policy="lookahead").
    common_random_numbers: all leaves of one search use the same rollout key.
    members: learned models only: "sample" (one member, drawn per simulation from the elites,
      for the expansion and its leaf rollout) or "mean" (the elites' mean prediction).
    gumbel_scale: scale of the root Gumbel noise (gumbel_muzero; 0 = no noise).
    max_num_considered_actions: root actions kept by sequential halving (gumbel_muzero).
    dirichlet_fraction: root Dirichlet noise weight (muzero; 0 = none, the planning default).
    temperature: acting temperature on visit counts (muzero; 0 = most visited).
    """

    num_simulations: int = 16
    max_depth: int | None = None
    # MuZero's PUCT: with uniform-rollout leaf values (before "lookahead" existed) it held the
    # pole 418/500 steps on average (16 simulations, 10 episodes) where Gumbel MuZero held 168.
    algorithm: str = "muzero"
    discount: float = 1.0
    rollout_policy: str = "lookahead"
    rollout_steps: int = 25
    num_rollouts: int = 2
    lookahead_steps: int = 100
    common_random_numbers: bool = True
    members: str = "sample"
    gumbel_scale: float = 0.0
    max_num_considered_actions: int = 16
    dirichlet_fraction: float = 0.0
    temperature: float = 0.0

    def __post_init__(self) -> None:
        validation.field_int(self, "num_simulations", 1)
        validation.field_optional_int(self, "max_depth", 1)
        validation.field_choice(self, "algorithm", ("gumbel_muzero", "muzero"))
        validation.field_float(self, "discount", 0.0, 1.0, lo_open=True)
        validation.field_choice(self, "rollout_policy", ROLLOUT_POLICIES)
        validation.field_int(self, "rollout_steps", 0)
        validation.field_int(self, "num_rollouts", 1)
        validation.field_int(self, "lookahead_steps", 1)
        validation.field_bool(self, "common_random_numbers")
        validation.field_choice(self, "members", MEMBER_MODES)
        validation.field_float(self, "gumbel_scale", 0.0)
        validation.field_int(self, "max_num_considered_actions", 1)
        validation.field_float(self, "dirichlet_fraction", 0.0, 1.0)
        validation.field_float(self, "temperature", 0.0)


class SearchModel(NamedTuple):
    """What the search needs of a model; nodes are unbatched embeddings.

    context(model_state, key) -> ctx: drawn once per simulation (a member index, or None).
    step(model_state, ctx, node, action int32 []) -> (node, reward [], terminated [] 0/1).
    terminated(node) -> [] 0/1: the step into `node` terminated (absorbing).
    """

    context: Callable[[Any, jax.Array], Any]
    step: Callable[[Any, Any, Any, jax.Array], tuple[Any, jax.Array, jax.Array]]
    terminated: Callable[[Any], jax.Array]
    num_actions: int


class ModelNode(NamedTuple):
    """A learned model's search node: obs [S] and terminated [] (0/1)."""

    obs: jax.Array
    terminated: jax.Array


class SearchParams(NamedTuple):
    """mctx's `params`: model_state (None for the env); invalid bool [B, A]; rollout_key (the
    common random numbers of this search); discount float32 [] (a leaf, so a grid varies it)."""

    model_state: Any
    invalid: jax.Array
    rollout_key: jax.Array
    discount: jax.Array


def one_hot_action(action: jax.Array, num_actions: int) -> jax.Array:
    """int action [...] -> float32 one-hot [..., A]: a discrete action as a model's action input."""
    return jax.nn.one_hot(jnp.asarray(action, jnp.int32), num_actions, dtype=jnp.float32)


def action_from_one_hot(one_hot: jax.Array) -> jax.Array:
    """float one-hot [..., A] -> int32 action [...] (the inverse of `one_hot_action`)."""
    return jnp.argmax(one_hot, axis=-1).astype(jnp.int32)


def masked_logits(invalid_actions: jax.Array) -> jax.Array:
    """Uniform prior logits `[..., A]` with `MASKED_LOGIT` at invalid actions."""
    return jnp.where(invalid_actions, MASKED_LOGIT, 0.0).astype(jnp.float32)


def env_search_model(env: Any) -> SearchModel:
    """The true env as a SearchModel: node = the env State (unbatched)."""

    def step(model_state, ctx, state, action):
        del model_state, ctx
        nxt = env.step(state, jnp.asarray(action, jnp.int32))
        return nxt, jnp.asarray(nxt.reward, jnp.float32), acting.termination(nxt)

    return SearchModel(lambda model_state, key: None, step, acting.termination,
                       int(env.num_actions))


def learned_search_model(model: Any, transition: Callable, num_actions: int,
                         members: str = "sample") -> SearchModel:
    """A learned dynamics model (the `mbjax.models` protocol) as a SearchModel.

    transition: `mbjax.rollout.make_model_transition(model, reward_fn, termination_fn, "hard")`
    (reward from the task's reward_fn or the model's head; termination from the task's
    termination_fn or the head's p > 0.5). The int action enters the model one-hot `[A]`.
    members: "sample" (ctx = one elite member drawn per simulation; its mean prediction) or
    "mean" (the elites' mean next obs / reward / termination, terminal where the mean > 0.5).
    """
    validation.check_choice("learned_search_model: members", members, MEMBER_MODES)

    def context(model_state, key):
        elites = model.elites(model_state)
        return elites[jax.random.randint(key, (), 0, elites.shape[0])]

    def step(model_state, member, node, action):
        a = one_hot_action(action, num_actions)
        if members == "sample":
            out = transition(model_state, node.obs[None, None], a[None, None], None,
                             member[None])
        else:
            elites = model.elites(model_state)
            k = elites.shape[0]
            out = transition(model_state, jnp.broadcast_to(node.obs, (k, 1) + node.obs.shape),
                             jnp.broadcast_to(a, (k, 1, num_actions)), None, elites)
        next_obs, reward = jnp.mean(out.next_obs, (0, 1)), jnp.mean(out.reward)
        terminated = (jnp.mean(out.done) > 0.5).astype(jnp.float32)
        dead = node.terminated > 0  # absorbing: a terminated node keeps its obs
        return (ModelNode(jnp.where(dead, node.obs, next_obs), jnp.maximum(node.terminated,
                                                                           terminated)),
                jnp.where(dead, 0.0, reward), terminated)

    ctx = (lambda model_state, key: None) if members == "mean" else context
    return SearchModel(ctx, step, lambda node: node.terminated, num_actions)


def make_leaf_value(search: SearchModel, config: MCTSConfig) -> Callable:
    """`value(model_state, ctx, node, key, invalid [A], discount) -> float32 []`: the leaf value
    of `config.rollout_policy` from `node` (0 if `node` is terminated). Rewards after a
    termination do not count; the terminating step's reward does."""

    def uniform_one(model_state, ctx, node, key, invalid, discount):
        def body(carry, k):
            n, alive, scale, ret = carry
            a = jax.random.categorical(k, masked_logits(invalid)).astype(jnp.int32)
            n, r, term = search.step(model_state, ctx, n, a)
            ret = ret + scale * alive * r
            return (n, alive * (1.0 - term), scale * discount, ret), None

        init = (node, 1.0 - search.terminated(node), jnp.float32(1.0), jnp.float32(0.0))
        (_, _, _, ret), _ = jax.lax.scan(body, init, jax.random.split(key, config.rollout_steps))
        return ret

    def uniform(model_state, ctx, node, key, invalid, discount):
        if config.rollout_steps == 0:
            return jnp.float32(0.0)
        keys = jax.random.split(key, config.num_rollouts)
        rets = jax.vmap(uniform_one, (None, None, None, 0, None, None))(
            model_state, ctx, node, keys, invalid, discount)
        return jnp.mean(rets) * (1.0 - search.terminated(node))

    def lookahead(model_state, ctx, node, key, invalid, discount):
        actions = jnp.arange(search.num_actions, dtype=jnp.int32)

        def body(carry, k):
            n, alive, scale, ret = carry
            # every action's one-step successor, valued with the SAME uniform-rollout key
            succ, r, term = jax.vmap(search.step, (None, None, None, 0))(model_state, ctx, n,
                                                                          actions)
            k_value, k_tie = jax.random.split(k)
            v = jax.vmap(uniform, (None, None, 0, None, None, None))(
                model_state, ctx, succ, k_value, invalid, discount)
            q = jnp.where(invalid, MASKED_LOGIT, r + discount * (1.0 - term) * v)
            # ties at random: a fixed tie-break (argmax's first index) would push one way
            a = jax.random.categorical(k_tie, jnp.where(q >= jnp.max(q), 0.0, -jnp.inf))
            nxt = jax.tree_util.tree_map(lambda x: x[a], succ)
            ret = ret + scale * alive * r[a]
            return (nxt, alive * (1.0 - term[a]), scale * discount, ret), None

        init = (node, 1.0 - search.terminated(node), jnp.float32(1.0), jnp.float32(0.0))
        keys = jax.random.split(key, config.lookahead_steps)
        (_, _, _, ret), _ = jax.lax.scan(body, init, keys)
        return ret

    return lookahead if config.rollout_policy == "lookahead" else uniform


def make_search_recurrent_fn(search: SearchModel, config: MCTSConfig) -> Callable:
    """The mctx `recurrent_fn(params: SearchParams, key, action [B], embedding [B]) ->
    (RecurrentFnOutput, embedding)` over `search`. A pure function of its inputs."""
    value_fn = make_leaf_value(search, config)

    def expand(params, invalid, key, action, node):
        k_ctx, k_value = jax.random.split(key)
        ctx = search.context(params.model_state, k_ctx)
        parent_term = search.terminated(node)
        stepped, reward, term = search.step(params.model_state, ctx, node, action)
        nxt = jax.tree_util.tree_map(lambda old, new: jnp.where(parent_term > 0, old, new),
                                     node, stepped)  # terminated nodes absorb
        term = jnp.maximum(parent_term, term)
        if config.common_random_numbers:
            k_value = params.rollout_key
        value = value_fn(params.model_state, ctx, nxt, k_value, invalid, params.discount)
        return (reward * (1.0 - parent_term), params.discount * (1.0 - term),
                value * (1.0 - term), nxt)

    def recurrent_fn(params, key, action, embedding):
        keys = jax.random.split(key, action.shape[0])
        reward, discount, value, nxt = jax.vmap(expand, (None, 0, 0, 0, 0))(
            params, params.invalid, keys, action.astype(jnp.int32), embedding)
        out = mctx.RecurrentFnOutput(reward=reward, discount=discount,
                                     prior_logits=masked_logits(params.invalid), value=value)
        return out, nxt

    return recurrent_fn


def make_recurrent_fn(env: Any, config: MCTSConfig) -> Callable:
    """`make_search_recurrent_fn` over the true env (embedding: the batched env State [B])."""
    return make_search_recurrent_fn(env_search_model(env), config)


def _masked_qtransform(base: Callable) -> Callable:
    """Wraps an mctx qtransform: actions whose prior logit is `MASKED_LOGIT` get Q = -1e9 in
    every node, so no selection rule picks them."""

    def qtransform(tree, node_index):
        q = base(tree, node_index)
        masked = tree.children_prior_logits[node_index] <= MASKED_LOGIT / 2
        return jnp.where(masked, MASKED_LOGIT, q)

    return qtransform


def make_search(search: SearchModel, config: MCTSConfig) -> Callable:
    """`search_fn(model_state, node, key, invalid_actions=None, discount=None) -> (action int32
    [], info)` from one unbatched root node. info: {"action_weights" [A] (the search's policy
    target), "root_value" [], "visit_counts" [A] (root children), "tree_children_visits"
    [num_simulations + 1, A]}. Jittable and vmappable; the same key gives the same action.
    discount: a float32 [] overriding `config.discount` (a run-state leaf)."""
    if not isinstance(config, MCTSConfig):
        raise ValueError(f"make_search: config must be an MCTSConfig, got {type(config)}")
    num_actions = search.num_actions
    value_fn = make_leaf_value(search, config)
    recurrent_fn = make_search_recurrent_fn(search, config)

    def search_fn(model_state, node, key, invalid_actions=None, discount=None):
        if invalid_actions is None:
            invalid_actions = jnp.zeros((num_actions,), bool)
        discount = jnp.float32(config.discount) if discount is None else discount
        invalid = jnp.asarray(invalid_actions, bool).reshape(1, num_actions)   # [1, A]
        k_ctx, k_value, k_search = jax.random.split(key, 3)
        root_value = value_fn(model_state, search.context(model_state, k_ctx), node, k_value,
                              invalid[0], discount)
        params = SearchParams(model_state, invalid, k_value, jnp.asarray(discount, jnp.float32))
        root = mctx.RootFnOutput(prior_logits=masked_logits(invalid), value=root_value[None],
                                 embedding=jax.tree_util.tree_map(lambda x: x[None], node))
        common = dict(params=params, rng_key=k_search, root=root, recurrent_fn=recurrent_fn,
                      num_simulations=config.num_simulations, invalid_actions=invalid,
                      max_depth=config.max_depth)
        if config.algorithm == "gumbel_muzero":
            out = mctx.gumbel_muzero_policy(
                **common, qtransform=_masked_qtransform(mctx.qtransform_completed_by_mix_value),
                max_num_considered_actions=config.max_num_considered_actions,
                gumbel_scale=config.gumbel_scale)
        else:
            out = mctx.muzero_policy(
                **common, qtransform=_masked_qtransform(mctx.qtransform_by_parent_and_siblings),
                dirichlet_fraction=config.dirichlet_fraction, temperature=config.temperature)
        info = {"action_weights": out.action_weights[0],
                "root_value": out.search_tree.node_values[0, 0],
                "visit_counts": out.search_tree.summary().visit_counts[0],
                "tree_children_visits": out.search_tree.children_visits[0]}
        return out.action[0].astype(jnp.int32), info

    return search_fn


def make_mcts_policy(env: Any, config: MCTSConfig) -> Callable:
    """`act(env_state, key, invalid_actions=None, discount=None) -> (action int32 [], info)`:
    search over the TRUE env from one (unbatched) env state (see `make_search`)."""
    if not isinstance(getattr(env, "num_actions", None), int):
        raise ValueError("make_mcts_policy: env must be discrete (an int num_actions)")
    search_fn = make_search(env_search_model(env), config)

    def act(env_state, key, invalid_actions=None, discount=None):
        return search_fn(None, env_state, key, invalid_actions, discount)

    return act


def make_model_mcts_policy(model: Any, transition: Callable, num_actions: int,
                           config: MCTSConfig) -> Callable:
    """`act(model_state, obs [S], key, invalid_actions=None, discount=None) -> (action int32 [],
    info)`: search over a LEARNED model (`learned_search_model`) from an observation."""
    search_fn = make_search(learned_search_model(model, transition, num_actions, config.members),
                            config)

    def act(model_state, obs, key, invalid_actions=None, discount=None):
        node = ModelNode(jnp.asarray(obs, jnp.float32), jnp.float32(0.0))
        return search_fn(model_state, node, key, invalid_actions, discount)

    return act


def run_episode(env: Any, act: Callable, key: jax.Array, num_steps: int | None = None,
                invalid_actions: jax.Array | None = None) -> dict[str, jax.Array]:
    """One episode of `act(env_state, key, invalid_actions)` in `env` as a `lax.scan` of
    `num_steps` steps (default: the env's `episode_length`). Returns {"length" [] (steps until
    done, inclusive), "return" [], "actions" int32 [T]}. vmap over `key` for many episodes."""
    num_steps = num_steps or getattr(env, "episode_length", 500)
    k_reset, k_act = jax.random.split(key)

    def body(episode, k):  # a masked episode: steps after the first done count nothing
        a, _ = act(episode.state, k, invalid_actions)
        episode, _ = acting.episode_step(env, episode, a)
        return episode, a

    episode, actions = jax.lax.scan(body, acting.start_episode(env, k_reset),
                                    jax.random.split(k_act, num_steps))
    return {"length": episode.length, "return": episode.episode_return, "actions": actions}
