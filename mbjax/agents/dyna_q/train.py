"""Dyna-Q and Dyna-Q+ as one compiled program (Sutton & Barto 2018, sections 8.2-8.3).

Per real step: epsilon-greedy action from Q[s] (ties broken at random), one env step, the
one-step Q-learning update, the tabular model records (s, a) -> (r, s', terminal) (counts and
last-tried time too), then n planning updates on (s, a) drawn uniformly from the model
(`lax.fori_loop`). One iteration = one episode (`lax.while_loop` over real steps until the
episode ends); `make_step_block` runs blocks of real steps instead (restarting episodes inside),
for step-budget curves such as figure 8.5. No Python loops run per step; `jax.vmap` over keys
runs many independent runs in one program.

Shapes: S states, A actions. Q [S, A] float32; model arrays [S, A] (`TabularModel`).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from mbjax import envs
from mbjax.agents.dyna_q.config import Config
from mbjax.agents.program import Program, Segment
from mbjax.envs.discrete import is_discrete


class Hyper(NamedTuple):
    """float32 [] leaves: step size, exploration, discount, Dyna-Q+ bonus weight."""

    alpha: jax.Array
    epsilon: jax.Array
    gamma: jax.Array
    kappa: jax.Array


class TabularModel(NamedTuple):
    """The model of observed transitions (deterministic env: the last outcome is kept).

    next_state int32 [S, A], reward float32 [S, A], terminal bool [S, A], tried bool [S, A],
    seen bool [S] (states the agent has acted from), count int32 [S, A] (times tried),
    last_tried int32 [S, A] (real-step time of the last try; 0 if never).
    pairs int32 [S * A]: flat indices s * A + a of the tried pairs in order of first try (the
    first num_pairs are valid); states int32 [S]: the seen states likewise (num_seen), so a
    uniform draw costs O(1).
    """

    next_state: jax.Array
    reward: jax.Array
    terminal: jax.Array
    tried: jax.Array
    seen: jax.Array
    count: jax.Array
    last_tried: jax.Array
    pairs: jax.Array
    num_pairs: jax.Array
    states: jax.Array
    num_seen: jax.Array


class DynaState(NamedTuple):
    """q [S, A]; model; hparams; env_state (the env's State); time int32 [] real steps taken;
    cumulative_reward float32 []; key; episode int32 [] episodes finished."""

    q: jax.Array
    model: TabularModel
    hparams: Hyper
    env_state: Any
    time: jax.Array
    cumulative_reward: jax.Array
    key: jax.Array
    episode: jax.Array


class EpisodeMetrics(NamedTuple):
    """Per iteration (episode), all scalars."""

    env_steps: jax.Array  # real steps of the run so far
    episode_return: jax.Array
    episode_length: jax.Array
    cumulative_reward: jax.Array
    nonfinite: jax.Array


def empty_model(num_states: int, num_actions: int) -> TabularModel:
    shape = (num_states, num_actions)
    return TabularModel(
        next_state=jnp.zeros(shape, jnp.int32), reward=jnp.zeros(shape, jnp.float32),
        terminal=jnp.zeros(shape, bool), tried=jnp.zeros(shape, bool),
        seen=jnp.zeros((num_states,), bool), count=jnp.zeros(shape, jnp.int32),
        last_tried=jnp.zeros(shape, jnp.int32),
        pairs=jnp.zeros((num_states * num_actions,), jnp.int32), num_pairs=jnp.int32(0),
        states=jnp.zeros((num_states,), jnp.int32), num_seen=jnp.int32(0))


def record(model: TabularModel, s, a, r, s_next, terminal, time) -> TabularModel:
    """The model after observing (s, a) -> (r, s_next, terminal) at real-step `time`."""
    new_pair, new_state = ~model.tried[s, a], ~model.seen[s]
    flat = s * model.tried.shape[1] + a
    pairs = model.pairs.at[model.num_pairs].set(jnp.where(new_pair, flat,
                                                          model.pairs[model.num_pairs]))
    states = model.states.at[model.num_seen].set(jnp.where(new_state, s,
                                                           model.states[model.num_seen]))
    return TabularModel(
        next_state=model.next_state.at[s, a].set(s_next),
        reward=model.reward.at[s, a].set(r),
        terminal=model.terminal.at[s, a].set(terminal),
        tried=model.tried.at[s, a].set(True),
        seen=model.seen.at[s].set(True),
        count=model.count.at[s, a].add(1),
        last_tried=model.last_tried.at[s, a].set(time),
        pairs=pairs, num_pairs=model.num_pairs + new_pair,
        states=states, num_seen=model.num_seen + new_state)


def greedy(q_row: jax.Array, key: jax.Array) -> jax.Array:
    """argmax of q_row [A] with ties broken uniformly at random -> int32 []."""
    best = q_row == jnp.max(q_row)
    return jax.random.categorical(key, jnp.where(best, 0.0, -jnp.inf)).astype(jnp.int32)


def epsilon_greedy(q_row: jax.Array, epsilon: jax.Array, key: jax.Array) -> jax.Array:
    k_explore, k_random, k_greedy = jax.random.split(key, 3)
    random_action = jax.random.randint(k_random, (), 0, q_row.shape[0], jnp.int32)
    explore = jax.random.uniform(k_explore) < epsilon
    return jnp.where(explore, random_action, greedy(q_row, k_greedy))


def q_update(q: jax.Array, s, a, r, s_next, terminal, hp: Hyper) -> jax.Array:
    """One-step Q-learning: Q[s, a] += alpha (r + gamma max_a' Q[s'] (1 - terminal) - Q[s, a])."""
    target = r + hp.gamma * jnp.max(q[s_next]) * (1.0 - terminal.astype(jnp.float32))
    return q.at[s, a].add(hp.alpha * (target - q[s, a]))


def planning_transition(model: TabularModel, plus: bool, kappa: jax.Array, time: jax.Array,
                        key: jax.Array) -> tuple[jax.Array, ...]:
    """A simulated (s, a, r, s', terminal) drawn uniformly from the model's pairs.

    Dyna-Q: among tried pairs. Dyna-Q+: among all actions of seen states (untried: stay with
    reward 0), with reward r + kappa * sqrt(time - last_tried[s, a]).
    """
    num_actions = model.tried.shape[1]
    k_first, k_action = jax.random.split(key)
    if plus:
        i = jax.random.randint(k_first, (), 0, jnp.maximum(model.num_seen, 1))
        s = model.states[i]
        a = jax.random.randint(k_action, (), 0, num_actions, jnp.int32)
    else:
        flat = model.pairs[jax.random.randint(k_first, (), 0, jnp.maximum(model.num_pairs, 1))]
        s, a = flat // num_actions, flat % num_actions
    tried = model.tried[s, a]
    r = jnp.where(tried, model.reward[s, a], 0.0)
    s_next = jnp.where(tried, model.next_state[s, a], s)
    if plus:
        r = r + bonus(model, kappa, time)[s, a]
    return s, a, r, s_next, model.terminal[s, a] & tried


def bonus(model: TabularModel, kappa: jax.Array, time: jax.Array) -> jax.Array:
    """Dyna-Q+'s exploration bonus kappa * sqrt(tau) [S, A], tau = time - last_tried."""
    tau = (time - model.last_tried).astype(jnp.float32)
    return kappa * jnp.sqrt(tau)


def plan(q: jax.Array, model: TabularModel, hp: Hyper, time: jax.Array, key: jax.Array,
         planning_steps: int, plus: bool) -> jax.Array:
    """Q after `planning_steps` simulated updates (nothing happens before a first real step)."""
    keys = jax.random.split(key, max(planning_steps, 1))

    def one(i, q):
        s, a, r, s_next, terminal = planning_transition(model, plus, hp.kappa, time, keys[i])
        return q_update(q, s, a, r, s_next, terminal, hp)

    return jax.lax.fori_loop(0, planning_steps, one, q)


def make_real_step(env: Any, config: Config) -> Callable[[DynaState], DynaState]:
    """step(state) -> state after one real step, its learning and planning. The reward and done
    of the step are `state.env_state.reward / .done`."""

    def step(state: DynaState) -> DynaState:
        key, k_act, k_plan = jax.random.split(state.key, 3)
        s = state.env_state.obs
        a = epsilon_greedy(state.q[s], state.hparams.epsilon, k_act)
        env_state = env.step(state.env_state, a)
        r, s_next = env_state.reward, env_state.obs
        terminal = (env_state.done * (1.0 - env_state.info["truncation"])) > 0
        time = state.time + 1
        q = q_update(state.q, s, a, r, s_next, terminal, state.hparams)
        model = record(state.model, s, a, r, s_next, terminal, time)
        q = plan(q, model, state.hparams, time, k_plan, config.planning_steps, config.plus)
        return state._replace(q=q, model=model, env_state=env_state, time=time, key=key,
                              cumulative_reward=state.cumulative_reward + r)

    return step


def make_env(config: Config) -> Any:
    """The tabular discrete env of `config` (one-line ValueError for any other env)."""
    env = envs.make(config.env, episode_length=config.max_episode_steps, **config.env_kwargs())
    if not is_discrete(env):
        raise ValueError(f"env {config.env} has continuous actions; dyna_q needs a discrete "
                         "tabular env (maze/dyna, maze/blocking, maze/shortcut)")
    if not isinstance(getattr(env, "num_states", None), int):
        raise ValueError(f"env {config.env} has no finite state set (num_states); dyna_q is "
                         "tabular: use maze/dyna, maze/blocking or maze/shortcut")
    return env


def make_init(env: Any, config: Config) -> Callable[[jax.Array], DynaState]:
    def init(key: jax.Array) -> DynaState:
        key, k_env = jax.random.split(key)
        f32 = lambda v: jnp.asarray(v, jnp.float32)
        hp = Hyper(f32(config.alpha), f32(config.epsilon), f32(config.gamma), f32(config.kappa))
        return DynaState(
            q=jnp.zeros((env.num_states, env.num_actions), jnp.float32),
            model=empty_model(env.num_states, env.num_actions), hparams=hp,
            env_state=env.reset(k_env), time=jnp.int32(0), cumulative_reward=f32(0.0),
            key=key, episode=jnp.int32(0))

    return init


def make_episode(env: Any, config: Config) -> Callable[[DynaState], tuple[DynaState, Any]]:
    """One iteration: a new episode (same world) run to its end -> (state, EpisodeMetrics)."""
    real_step = make_real_step(env, config)

    def episode(state: DynaState) -> tuple[DynaState, EpisodeMetrics]:
        key, k_env = jax.random.split(state.key)
        start = state._replace(env_state=env.restart(state.env_state, k_env), key=key)

        def body(carry):
            st, ret, length = carry
            st = real_step(st)
            return st, ret + st.env_state.reward, length + 1

        state, ret, length = jax.lax.while_loop(
            lambda c: c[0].env_state.done == 0, body, (start, jnp.float32(0.0), jnp.int32(0)))
        state = state._replace(episode=state.episode + 1)
        metrics = EpisodeMetrics(
            env_steps=state.time, episode_return=ret, episode_length=length,
            cumulative_reward=state.cumulative_reward,
            nonfinite=~jnp.all(jnp.isfinite(state.q)))
        return state, metrics

    return episode


def make_step_block(env: Any, config: Config, num_steps: int):
    """block(state) -> (state, cumulative_reward float32 [num_steps]): `num_steps` real steps,
    a finished episode restarting at once (the book's step-budget curves, figure 8.5)."""
    real_step = make_real_step(env, config)

    def one(state: DynaState, _):
        key, k_env = jax.random.split(state.key)
        restarted = env.restart(state.env_state, k_env)
        ended = state.env_state.done > 0
        env_state = jax.tree.map(lambda new, old: jnp.where(ended, new, old), restarted,
                                 state.env_state)
        state = real_step(state._replace(env_state=env_state, key=key))
        state = state._replace(episode=state.episode + (state.env_state.done > 0))
        return state, state.cumulative_reward

    return lambda state: jax.lax.scan(one, state, None, length=num_steps)


def episode_record(i: int, m: Any) -> dict:
    return {"episode": i, "env_steps": int(m.env_steps),
            "episode_return": float(m.episode_return),
            "episode_length": int(m.episode_length),
            "cumulative_reward": float(m.cumulative_reward)}


def make_program(config: Config, env: Any = None) -> Program:
    """The run as a Program: `config.episodes` iterations of one episode each. `env`: a tabular
    env to use instead of `make_env(config)` (e.g. one built with another layout)."""
    env = make_env(config) if env is None else env
    return Program(make_init(env, config), (Segment(make_episode(env, config), config.episodes),),
                   episode_record, config.on_nonfinite)


def make_policy(config: Config, final_state: DynaState):
    """(init_carry, policy): greedy in the learned Q (ties at random); obs = state index []."""
    q = jnp.asarray(final_state.q)  # a restored checkpoint holds numpy arrays

    def policy(carry, obs, key):
        return carry, greedy(q[jnp.asarray(obs, jnp.int32)], key), {}

    return (lambda key: ()), policy


def grid_leaves(config: Config) -> dict:
    """alpha / epsilon / gamma / kappa: `--grid.alpha=0.1,0.5` in `experiments.sweep`."""
    del config

    def setter(name):
        return lambda state, v: state._replace(hparams=state.hparams._replace(**{name: v}))

    return {name: setter(name) for name in Hyper._fields}
