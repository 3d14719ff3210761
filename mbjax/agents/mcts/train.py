"""The MCTS agent as one compiled program: MPC by mctx tree search on a discrete env, with the
true env as the model or a learned ensemble (issue 17).

model="true": every iteration is one episode searching with the env itself (no learning; the
planner's upper bound). model="learned": `num_seed_episodes` uniform-random episodes, then per
iteration: refit the ensemble on all transitions (the PETS fit path: the protocol's
`model.fit(state, buffer, key)` on a `ReplayBuffer` of `Transition`s, actions stored one-hot),
then one episode searching with the ensemble (`mbjax.planners.mcts.learned_search_model`).

An episode is a `lax.while_loop` over steps that stops when the episode ends (a failed early
episode costs no further searches); its steps are preallocated `[T]` and written at the step
index, so shapes stay static. Under `vmap` (seed sweeps) it runs until every run's episode ended.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from mbjax import acting, grid, replay
from mbjax import envs as mbjax_envs
from mbjax.agents.mcts.config import Config
from mbjax.agents.program import Program, Segment
from mbjax.envs.discrete import is_discrete
from mbjax.models import FitMetrics, all_finite, make_ensemble
from mbjax.planners import mcts
from mbjax.rollout import make_model_transition


class Hyper(NamedTuple):
    """float32 [] leaves of the run state: the search's discount."""

    discount: jax.Array


@struct.dataclass
class MCTSState:
    """model: the ensemble's state (None with the true model); buffer: all real transitions,
    actions one-hot [A] (None with the true model); hparams; key; episode / env_steps: int32."""

    model: Any
    buffer: Any
    hparams: Hyper
    key: jax.Array
    episode: jax.Array
    env_steps: jax.Array


class EpisodeMetrics(NamedTuple):
    """Per iteration (episode), all scalars. root_value: the mean searched root value over the
    episode's steps (NaN for random seed episodes); model_*_mse: the fit's (NaN: no fit)."""

    env_steps: jax.Array
    episode_return: jax.Array
    episode_length: jax.Array
    root_value: jax.Array
    model_train_mse: jax.Array
    model_holdout_mse: jax.Array
    nonfinite: jax.Array


class Agent(NamedTuple):
    """Function bundle built from a Config.

    act(model_state, env_state, key, discount) -> (action int32 [], info): one search (the
      learned model reads `env_state.obs` only). model: the ensemble (None: true model).
    """

    config: Config
    env: Any
    model: Any
    num_steps: int
    act: Callable[..., tuple[jax.Array, dict]]


def make_env(config: Config) -> Any:
    """The discrete env of `config` (a one-line ValueError for a continuous env)."""
    env = mbjax_envs.make(config.env, episode_length=config.episode_length)
    if not is_discrete(env):
        raise ValueError(f"env {config.env} has continuous actions; mcts needs a discrete env "
                         "(cartpole_discrete, maze/dyna, ...)")
    return env


def make_agent(config: Config) -> Agent:
    """The env, the model (learned only) and the search for `config`."""
    env = make_env(config)
    num_steps = int(env.episode_length)
    if config.model == "true":
        search = mcts.make_mcts_policy(env, config.search)
        act = lambda model_state, env_state, key, discount: search(  # noqa: E731
            env_state, key, None, discount)
        return Agent(config, env, None, num_steps, act)
    model = make_ensemble(config.ensemble, env.observation_size, env.num_actions)
    reward_fn, termination_fn = mbjax_envs.resolve_task(config.env, config.learned_reward,
                                                        config.learned_termination)
    transition = make_model_transition(model, reward_fn, termination_fn, "hard")
    search = mcts.make_model_mcts_policy(model, transition, env.num_actions, config.search)
    act = lambda model_state, env_state, key, discount: search(  # noqa: E731
        model_state, env_state.obs, key, None, discount)
    return Agent(config, env, model, num_steps, act)


class StepCarry(NamedTuple):
    """The carry of one episode's loop over steps."""

    t: jax.Array  # int32 []: the next step's index
    episode: acting.Episode
    steps: acting.EpisodeStep  # leaves [T]; steps not taken: invalid
    root_values: jax.Array  # [T]


def run_episode(env: Any, num_steps: int, choose: Callable, key: jax.Array) -> StepCarry:
    """One episode of `choose(env_state, key) -> (action int32 [], root_value [])` as a
    `while_loop` that stops at the episode's end; transitions store the action one-hot."""
    k_reset, k_act = jax.random.split(key)
    keys = jax.random.split(k_act, num_steps)

    def one_step(episode, key):
        action, root_value = choose(episode.state, key)
        episode, step = acting.episode_step(env, episode, action)
        one_hot = mcts.one_hot_action(action, env.num_actions)
        return episode, step._replace(transition=step.transition.replace(action=one_hot)), \
            root_value

    def body(c: StepCarry) -> StepCarry:
        episode, step, root_value = one_step(c.episode, keys[c.t])
        put = lambda every, new: jax.lax.dynamic_update_index_in_dim(every, new, c.t, 0)  # noqa
        return StepCarry(c.t + 1, episode, jax.tree_util.tree_map(put, c.steps, step),
                         put(c.root_values, root_value))

    episode = acting.start_episode(env, k_reset)
    step_shape = jax.eval_shape(one_step, episode, keys[0])[1]
    steps = jax.tree_util.tree_map(lambda x: jnp.zeros((num_steps,) + x.shape, x.dtype),
                                   step_shape)
    carry = StepCarry(jnp.zeros((), jnp.int32), episode, steps, jnp.zeros((num_steps,)))
    return jax.lax.while_loop(lambda c: (c.t < num_steps) & (c.episode.alive > 0), body, carry)


def make_episode(agent: Agent, kind: str) -> Callable[[MCTSState], tuple[MCTSState, Any]]:
    """One iteration: kind "random" (uniform actions), "search" (true model) or "fit_search"
    (refit the ensemble on the buffer, then search with it) -> (state, EpisodeMetrics)."""
    env, model = agent.env, agent.model

    def episode(state: MCTSState) -> tuple[MCTSState, EpisodeMetrics]:
        key, k_fit, k_episode = jax.random.split(state.key, 3)
        model_state, fit = state.model, FitMetrics.none()
        if kind == "fit_search":
            model_state, fit_info = model.fit(model_state, state.buffer, k_fit)
            fit = FitMetrics.of(fit_info)

        def choose(env_state, k):
            if kind == "random":
                return jax.random.randint(k, (), 0, env.num_actions, jnp.int32), jnp.nan
            action, info = agent.act(model_state, env_state, k, state.hparams.discount)
            return action, info["root_value"]

        done = run_episode(env, agent.num_steps, choose, k_episode)
        buffer = state.buffer
        if buffer is not None:
            buffer = replay.add_masked(buffer, done.steps.transition, done.steps.valid)
        length = done.episode.length
        state = state.replace(model=model_state, buffer=buffer, key=key,
                              episode=state.episode + 1,
                              env_steps=state.env_steps + length.astype(jnp.int32))
        valid = done.steps.valid
        root_value = jnp.sum(jnp.where(valid > 0, done.root_values, 0.0)) / jnp.maximum(
            jnp.sum(valid), 1.0)
        nonfinite = fit.nonfinite | (~all_finite(buffer.data) if buffer is not None else False)
        return state, EpisodeMetrics(
            env_steps=state.env_steps, episode_return=done.episode.episode_return,
            episode_length=length, root_value=root_value, model_train_mse=fit.train_loss,
            model_holdout_mse=fit.holdout_loss, nonfinite=jnp.asarray(nonfinite))

    return episode


def make_init(agent: Agent) -> Callable[[jax.Array], MCTSState]:
    config, env = agent.config, agent.env

    def init(key: jax.Array) -> MCTSState:
        k_model, k_run = jax.random.split(key)
        learned = agent.model is not None
        capacity = config.num_episodes * agent.num_steps
        example = acting.empty_transition(env.observation_size, env.num_actions)
        return MCTSState(
            model=agent.model.init(k_model) if learned else None,
            buffer=replay.init(capacity, example) if learned else None,
            hparams=Hyper(jnp.float32(config.search.discount)), key=k_run,
            episode=jnp.zeros((), jnp.int32), env_steps=jnp.zeros((), jnp.int32))

    return init


def _record(i: int, m: EpisodeMetrics) -> dict[str, Any]:
    def num(x):
        v = float(np.asarray(x))
        return None if np.isnan(v) else v

    return {"episode": i, "env_steps": int(m.env_steps),
            "episode_return": float(m.episode_return), "episode_length": int(m.episode_length),
            "root_value": num(m.root_value), "model_train_mse": num(m.model_train_mse),
            "model_holdout_mse": num(m.model_holdout_mse)}


def make_program(config: Config, agent: Agent | None = None) -> Program:
    """The run as a Program: true model: `num_episodes` search episodes; learned:
    `num_seed_episodes` random episodes, then fit-and-search episodes."""
    agent = agent or make_agent(config)
    n_seed = config.seed_episodes
    if config.model == "true":
        segments = (Segment(make_episode(agent, "search"), config.num_episodes),)
    else:
        segments = (Segment(make_episode(agent, "random"), n_seed),
                    Segment(make_episode(agent, "fit_search"), config.num_episodes - n_seed))
    return Program(make_init(agent), segments, _record, config.on_nonfinite)


def make_policy(config: Config, final_state: MCTSState):
    """(init_carry, policy): one search per call from the final state's model.

    learned: policy(carry, obs [S], key) -> (carry, action int32 [], info).
    true: policy(carry, env_state, key) takes the env State, not obs (the search steps the
    simulator; the exception oracle MPC makes too, docs/architecture.md).
    """
    agent = make_agent(config)
    model_state = final_state.model
    discount = jnp.asarray(final_state.hparams.discount, jnp.float32)

    def policy(carry, obs_or_state, key):
        if agent.model is None:
            action, info = agent.act(None, obs_or_state, key, discount)
        else:
            node = mcts.ModelNode(jnp.asarray(obs_or_state, jnp.float32), jnp.float32(0.0))
            action, info = agent.act(model_state, node, key, discount)
        return carry, action, info

    return (lambda key: ()), policy


def grid_leaves(config: Config) -> dict[str, grid.Setter]:
    """`search.discount` (and `ensemble.learning_rate` with the learned model)."""

    def set_discount(state: MCTSState, value: jax.Array) -> MCTSState:
        return state.replace(hparams=state.hparams._replace(discount=value))

    leaves = {"search.discount": set_discount}
    if config.model == "learned":
        leaves.update(grid.model_leaves("ensemble."))
    return leaves
