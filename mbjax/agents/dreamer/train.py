"""Dreamer as one compiled Program (Hafner et al. 2020; DreamerV3, Hafner et al. 2023).

    from mbjax.agents import dreamer
    config = dreamer.preset("dmc/CartpoleBalance", "cpu")
    program = dreamer.make_program(config)          # run_host / run_sweep / make_pure_train
    _, metrics = jax.jit(jax.vmap(dreamer.make_train(config)))(keys)   # seeds in one program
    init_carry, policy = dreamer.make_policy(config, final_state)

init: `num_envs` envs reset, empty per-env replay buffers, `init_random_steps` uniform-random
agent steps. One iteration (a `lax.scan` over blocks, no host code inside):

    repeat steps_per_iteration / train_every times:
        train_every agent steps of every env: filter obs into the RSSM latent, act with the
            actor (sampled), step (auto-reset), store the transition in the env's buffer
        updates_per_block updates: world model on a replayed batch of sequences
            (`world_model.update`), then actor and critic on trajectories imagined from that
            batch's posterior states (`behavior`)
    num_eval_episodes episodes of the actor's mode (`make_policy`'s policy), their mean return
        is the record's `episode_return`
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from mbjax import acting, envs, grid, replay
from mbjax.agents.algorithm import PolicyFactory
from mbjax.agents.dreamer import collect, world_model
from mbjax.agents.dreamer.behavior import Behavior, BehaviorState, make_behavior
from mbjax.agents.dreamer.behavior import set_learning_rates as set_behavior_lrs
from mbjax.agents.dreamer.config import Config
from mbjax.agents.program import Program, Segment, make_pure_train
from mbjax.envs.discrete import is_discrete
from mbjax.models import all_finite
from mbjax.models.rssm import RSSMModel, RSSMState, make_rssm
from mbjax.models.rssm import set_learning_rate as set_model_lr
from mbjax.models.rssm.model import make_optimizer as make_model_optimizer


@struct.dataclass
class DreamerState:
    """Everything a run needs to continue (what checkpoints hold).

    model: RSSMState; behavior: BehaviorState; buffers: per-env replay buffers (leaves
    [num_envs, capacity, ...]); envs: acting.EnvBatch [num_envs]; carry: the filter per env
    (collect.FilterCarry [num_envs]); key; iteration / env_steps: int32 counters (env steps
    include action repeats and every env)."""

    model: RSSMState
    behavior: BehaviorState
    buffers: replay.ReplayBuffer
    envs: acting.EnvBatch
    carry: collect.FilterCarry
    key: jax.Array
    iteration: jax.Array
    env_steps: jax.Array


class IterationMetrics(NamedTuple):
    """Per-iteration scalars: episode_return / eval_return_std: the evaluation episodes' mean /
    std (NaN with num_eval_episodes = 0); train_return: mean of the training envs' last finished
    episodes (NaN before any); model / behavior: means over the iteration's updates."""

    env_steps: jax.Array
    episode_return: jax.Array
    eval_return_std: jax.Array
    train_return: jax.Array
    nonfinite: jax.Array
    model: dict
    behavior: dict


class Parts(NamedTuple):
    """What a Config builds: the env, its spaces, the RSSM and the behaviour learner."""

    env: Any
    discrete: bool
    action_size: int  # env action dims, or classes for a discrete env
    model: RSSMModel
    behavior: Behavior
    eval_steps: int


def make_env(config: Config) -> Any:
    """The env of `config` (image observations with `pixels`)."""
    kw: dict[str, Any] = dict(episode_length=config.episode_length)
    if config.action_repeat != 1:
        kw["action_repeat"] = config.action_repeat
    if config.pixels:
        kw.update(pixels=True, image_size=config.model.image_size,
                  frame_stack=max(config.model.image_channels // 3, 1))
    return envs.make(config.env, **kw)


def make_parts(config: Config) -> Parts:
    """The env, the RSSM for its observations and actions, and the actor-critic."""
    env = make_env(config)
    discrete = is_discrete(env)
    action_size = int(env.num_actions if discrete else env.action_size)
    obs_shape = env.observation_size
    model = make_rssm(config.model, obs_shape if isinstance(obs_shape, tuple) else int(obs_shape),
                      action_size)
    behavior = make_behavior(config, model, action_size, discrete)
    eval_steps = math.ceil(env.episode_length / config.action_repeat)
    return Parts(env, discrete, action_size, model, behavior, eval_steps)


def carry_policy(parts: Parts, model_params: Any, actor_params: Any,
                 deterministic: bool = True) -> PolicyFactory:
    """(init_carry, policy) for one env: the filter carry, and policy(carry, obs, key) ->
    (carry, env action, {}) acting with the actor's mode (or a sample)."""

    def init_carry(key: jax.Array) -> collect.FilterCarry:
        del key
        return collect.initial_carry(parts.model, ())

    def policy(carry: collect.FilterCarry, obs: jax.Array, key: jax.Array):
        carry, action = collect.policy_step(parts.model, parts.behavior, model_params,
                                            actor_params, carry, obs, key, deterministic)
        return carry, collect.env_action(action, parts.discrete), {}

    return init_carry, policy


def _empty_buffers(config: Config, parts: Parts) -> replay.ReplayBuffer:
    env = parts.env
    example = acting.empty_transition(env.observation_size, parts.action_size,
                                      obs_dtype=getattr(env, "observation_dtype", jnp.float32))
    one = replay.init(config.capacity, example)
    return jax.tree.map(lambda x: jnp.broadcast_to(x, (config.num_envs,) + x.shape), one)


def make_init(config: Config, parts: Parts) -> Callable[[jax.Array], DreamerState]:
    """init(key) -> DreamerState after the random prefill."""
    collect_step = functools.partial(collect.collect_step, parts.env, parts.model,
                                     parts.behavior, parts.discrete)

    def init(key: jax.Array) -> DreamerState:
        k_model, k_behavior, k_env, k_fill, k_run = jax.random.split(key, 5)
        state = DreamerState(
            model=parts.model.init(k_model), behavior=parts.behavior.init(k_behavior),
            buffers=_empty_buffers(config, parts),
            envs=acting.reset_batch(parts.env, k_env, config.num_envs),
            carry=collect.initial_carry(parts.model, (config.num_envs,)), key=k_run,
            iteration=jnp.zeros((), jnp.int32), env_steps=jnp.zeros((), jnp.int32))

        def fill(s: DreamerState, k):
            e, b, c = collect_step(s.envs, s.buffers, s.carry, s.model.params,
                                   s.behavior.actor_params, k, random=True)
            return s.replace(envs=e, buffers=b, carry=c), None

        state, _ = jax.lax.scan(fill, state, jax.random.split(k_fill, config.init_random_steps))
        steps = config.init_random_steps * config.num_envs * config.action_repeat
        return state.replace(env_steps=jnp.asarray(steps, jnp.int32))

    return init


def make_iteration(config: Config, parts: Parts) -> Callable[[DreamerState], tuple]:
    """iteration(state) -> (state, IterationMetrics): see the module docstring."""
    model_optimizer = make_model_optimizer(config.model)
    collect_step = functools.partial(collect.collect_step, parts.env, parts.model,
                                     parts.behavior, parts.discrete)
    mc = config.model

    def one_update(s: DreamerState, key: jax.Array):
        k_batch, k_model, k_behavior = jax.random.split(key, 3)
        batch = world_model.sample_batch(s.buffers, k_batch, mc.batch_size, mc.seq_len)
        model, starts, start_cont, m_metrics = world_model.update(
            parts.model, model_optimizer, s.model, batch, k_model)
        if config.imagine_starts is not None:
            k_starts, k_behavior = jax.random.split(k_behavior)
            pick = jax.random.permutation(k_starts, start_cont.shape[0])[:config.imagine_starts]
            starts, start_cont = jax.tree.map(lambda x: x[pick], (starts, start_cont))
        behavior, b_metrics = parts.behavior.update(s.behavior, model.params, starts,
                                                    start_cont, k_behavior)
        nonfinite = m_metrics.pop("nonfinite") | b_metrics.pop("nonfinite")
        return s.replace(model=model, behavior=behavior), (m_metrics, b_metrics, nonfinite)

    def block(s: DreamerState, key: jax.Array):
        k_steps, k_updates = jax.random.split(key)

        def step(s, k):
            e, b, c = collect_step(s.envs, s.buffers, s.carry, s.model.params,
                                   s.behavior.actor_params, k, random=False)
            return s.replace(envs=e, buffers=b, carry=c), None

        s, _ = jax.lax.scan(step, s, jax.random.split(k_steps, config.train_every))
        return jax.lax.scan(one_update, s, jax.random.split(k_updates, config.updates_per_block))

    def evaluate(s: DreamerState, key: jax.Array) -> jax.Array:
        init_carry, policy = carry_policy(parts, s.model.params, s.behavior.actor_params)
        run = lambda k: acting.policy_return(parts.env, init_carry, policy, k, parts.eval_steps)  # noqa: E731
        return jax.vmap(run)(jax.random.split(key, config.num_eval_episodes))

    def iteration(state: DreamerState):
        key, k_blocks, k_eval = jax.random.split(state.key, 3)
        state, (m_metrics, b_metrics, nonfinite) = jax.lax.scan(
            block, state, jax.random.split(k_blocks, config.blocks_per_iteration))
        if config.num_eval_episodes:
            rets = evaluate(state, k_eval)
            ret, std = jnp.mean(rets), jnp.std(rets)
        else:
            ret = std = jnp.full((), jnp.nan)
        steps = config.steps_per_iteration * config.num_envs * config.action_repeat
        state = state.replace(key=key, iteration=state.iteration + 1,
                              env_steps=state.env_steps + steps)
        train_return = acting.mean_last_return(state.envs)
        if not config.num_eval_episodes:
            ret = train_return
        mean = lambda d: jax.tree.map(jnp.mean, d)  # noqa: E731
        bad = jnp.any(nonfinite) | ~all_finite(state.buffers.data)
        if config.num_eval_episodes:
            bad = bad | ~jnp.isfinite(ret)
        return state, IterationMetrics(state.env_steps, ret, std, train_return, bad,
                                       mean(m_metrics), mean(b_metrics))

    return iteration


def _optional(x: Any) -> float | None:
    v = float(np.asarray(x))
    return None if math.isnan(v) else v


def iteration_record(i: int, m: IterationMetrics) -> dict[str, Any]:
    """The host record of one iteration."""
    record = {"iteration": i, "env_steps": int(m.env_steps),
              "episode_return": float(np.nan_to_num(np.asarray(m.episode_return), nan=0.0)),
              "eval_return_std": _optional(m.eval_return_std),
              "train_return": _optional(m.train_return)}
    record.update({k: _optional(v) for k, v in sorted(m.model.items())})
    record.update({k: _optional(v) for k, v in sorted(m.behavior.items())})
    return record


def make_program(config: Config, parts: Parts | None = None) -> Program:
    """Dreamer as a Program: `config.iterations` identical compiled iterations."""
    parts = parts or make_parts(config)
    return Program(jax.jit(make_init(config, parts)),
                   (Segment(make_iteration(config, parts), config.iterations),),
                   iteration_record, config.on_nonfinite)


def make_train(config: Config) -> Callable[[jax.Array], tuple[DreamerState, IterationMetrics]]:
    """A pure `train(key) -> (final_state, metrics [iterations])`; vmap it over seeds."""
    return make_pure_train(make_program(config))


def make_policy(config: Config, state: DreamerState, deterministic: bool = True) -> PolicyFactory:
    """(init_carry, policy) acting with the final state's world model (filter) and actor."""
    parts = make_parts(config)
    state = jax.tree.map(jnp.asarray, state)  # a restored checkpoint holds numpy arrays
    return carry_policy(parts, state.model.params, state.behavior.actor_params, deterministic)


def grid_leaves(config: Config) -> dict[str, grid.Setter]:
    """The numeric fields that are leaves of the run state (`experiments.sweep --grid.<f>=`):
    the three learning rates and the behaviour hyperparameters."""
    del config

    def behavior(fn):
        return lambda state, value: state.replace(behavior=fn(state.behavior, value))

    def hparam(name):
        return behavior(lambda b, v: b._replace(hparams=b.hparams._replace(**{name: v})))

    leaves = {
        "actor_lr": behavior(lambda b, v: set_behavior_lrs(b, actor_lr=v)),
        "critic_lr": behavior(lambda b, v: set_behavior_lrs(b, critic_lr=v)),
        "model.learning_rate": lambda s, v: s.replace(model=set_model_lr(s.model, v)),
    }
    leaves.update({name: hparam(name) for name in
                   ("entropy", "discount", "lam", "slow_critic_rate", "return_norm_rate")})
    return leaves
