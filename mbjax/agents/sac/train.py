"""SAC alone as a Program: one compiled epoch, `make_train(config) -> train(key)`.

    from mbjax.agents import sac
    config = sac.preset("point_mass", "test")
    program = sac.make_program(config)             # run_host / run_sweep / make_pure_train
    _, metrics = jax.jit(jax.vmap(sac.make_train(config)))(keys)   # a seed sweep, one program
    init_carry, policy = sac.make_policy(config, final_state)

Structure (`mbjax.acting` does all env interaction):
  init: reset `num_envs` envs, then `init_random_steps` uniform-random transitions;
  epoch: scan over steps_per_epoch / num_envs iterations of
             step the envs with the SAC policy (auto-reset) -> replay buffer,
             updates_per_step * num_envs SAC updates on batches from the buffer;
         then evaluate the deterministic policy on num_eval_episodes episodes.

This is the one SAC training loop: MBPO (`mbjax.agents.mbpo.train`) builds a `SACLoop` from
`mbpo.sac_alone(config)`, extends `TrainState` with its model and model buffer, interleaves model
blocks with the same `learn_iteration`s (sampling mixed real/model batches) and ends its epochs
with the same `finish_epoch`.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, NamedTuple, TypeVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from mbjax import acting, replay
from mbjax import envs as mbjax_envs
from mbjax.agents.algorithm import PolicyFactory
from mbjax.agents.program import Program, Segment, make_pure_train
from mbjax.agents.sac.config import Config
from mbjax.agents.sac.learner import SAC, ActorParams, SACState, make_sac
from mbjax.agents.sac.update import TargetsFn, one_step_targets
from mbjax.models import all_finite
from mbjax.types import Transition


@struct.dataclass
class TrainState:
    """Everything a SAC run needs to continue, as one pytree (what checkpoints hold).

    sac: learner state; buffer: real transitions; envs: the training envs (`acting.EnvBatch`,
    leaves [num_envs, ...], with running / last episode returns); key: the run's PRNG key;
    epoch / env_steps: int32 counters (env_steps counts env steps, action repeats included).
    """

    sac: SACState
    buffer: replay.ReplayBuffer
    envs: acting.EnvBatch
    key: jax.Array
    epoch: jax.Array
    env_steps: jax.Array


State = TypeVar("State", bound=TrainState)  # TrainState or an extension of it (MBPO's)
# sample_batch(state, key) -> one SAC batch, Transition leaves [batch_size, ...]
SampleFn = Callable[[Any, jax.Array], Transition]


class EpochMetrics(NamedTuple):
    """Per-epoch scalars (stacked over epochs by `make_train`).

    episode_return / eval_return_std: mean / std of the deterministic policy's evaluation returns
    after the epoch; train_return: mean return of the training envs' last finished episodes (NaN
    before any finished); nonfinite: NaN/Inf met; sac: SAC update metrics (means over the epoch);
    extra: what an algorithm built on this loop adds (MBPO: its model's metrics), None here.
    """

    env_steps: jax.Array
    episode_return: jax.Array
    eval_return_std: jax.Array
    train_return: jax.Array
    nonfinite: jax.Array
    sac: dict
    extra: Any = None


class SACLoop(NamedTuple):
    """The SAC loop's functions for one Config (all pure; jit where you call them).

    init(key) -> TrainState                     envs reset + random exploration (jitted)
    epoch(state) -> (state, EpochMetrics)       one epoch of SAC alone
    Pieces that MBPO composes (they work on any extension of TrainState):
    init_state(k_sac, k_env, k_run) -> TrainState       before exploration
    explore(state, key) -> state                         init_random_steps random transitions
    learn_iteration(state, key, sample_batch, targets_fn=one_step_targets) -> (state, SAC
        metrics): num_envs env steps, then updates_per_step * num_envs updates on batches
        sample_batch(state, key), the critics regressing onto targets_fn's targets
    finish_epoch(state, key, eval_key, sac_metrics, nonfinite) -> (state, EpochMetrics)
    evaluate(actor_params, key) -> returns [num_eval_episodes]
    """

    init: Callable[[jax.Array], TrainState]
    epoch: Callable[[TrainState], tuple[TrainState, EpochMetrics]]
    init_state: Callable[[jax.Array, jax.Array, jax.Array], TrainState]
    explore: Callable[[State, jax.Array], State]
    learn_iteration: Callable[[State, jax.Array, SampleFn], tuple[State, dict]]
    finish_epoch: Callable[..., tuple[State, EpochMetrics]]
    evaluate: Callable[[ActorParams, jax.Array], jax.Array]
    config: Config
    env: Any
    sac: SAC
    num_eval_steps: int  # agent steps per evaluation episode


def make_env(config: Any) -> Any:
    """The registry env of a config with `env`, `episode_length` and `action_repeat` fields."""
    return mbjax_envs.make(
        config.env, episode_length=config.episode_length, action_repeat=config.action_repeat
    )


def _epoch_metrics(state: TrainState, returns: jax.Array, sac_metrics: dict,
                   nonfinite: jax.Array | bool) -> EpochMetrics:
    """returns: [num_eval_episodes]; sac_metrics: leaves of any shape (averaged).

    nonfinite: `nonfinite` (e.g. MBPO's model fits) or a NaN/Inf in the SAC losses, the
    evaluation returns or the real replay buffer (an env that returned NaN/Inf: the buffer was
    finite when the epoch began, since a non-finite epoch is rolled back or stops the run).
    """
    sac_metrics = jax.tree_util.tree_map(jnp.mean, sac_metrics)
    finite = all_finite(sac_metrics) & all_finite(returns) & all_finite(state.buffer.data)
    return EpochMetrics(
        env_steps=state.env_steps, episode_return=jnp.mean(returns),
        eval_return_std=jnp.std(returns), train_return=acting.mean_last_return(state.envs),
        nonfinite=jnp.asarray(nonfinite) | ~finite, sac=sac_metrics,
    )


def init_train_state(env: Any, sac: SAC, config: Config, k_sac: jax.Array, k_env: jax.Array,
                     k_run: jax.Array) -> TrainState:
    """A fresh TrainState: `num_envs` envs reset, an empty buffer, the SAC learner's state with
    the first observations in its running statistics."""
    obs_size, action_size = int(env.observation_size), int(env.action_size)
    envs = acting.reset_batch(env, k_env, config.num_envs)
    return TrainState(
        sac=sac.observe(sac.init(k_sac), envs.state.obs),
        buffer=replay.init(config.capacity, acting.empty_transition(obs_size, action_size)),
        envs=envs, key=k_run, epoch=jnp.zeros((), jnp.int32),
        env_steps=jnp.zeros((), jnp.int32),
    )


def env_iteration(env: Any, sac: SAC, config: Config, state: State, key: jax.Array,
                  random_actions: bool) -> State:
    """num_envs env steps (auto-reset) into the replay buffer; uniform random actions when
    `random_actions` (static), else the SAC policy's samples."""
    num_envs = config.num_envs
    k_act, k_reset = jax.random.split(key)
    if random_actions:
        action = acting.random_actions(k_act, (num_envs, int(env.action_size)))
    else:
        action = sac.act(state.sac.actor_params, state.envs.state.obs, k_act)
    envs, transitions = acting.step_batch(env, state.envs, action, k_reset)
    return state.replace(
        sac=sac.observe(state.sac, transitions.next_obs),
        buffer=replay.add(state.buffer, transitions),
        envs=envs,
        env_steps=state.env_steps + num_envs * config.action_repeat,
    )


def make_loop(config: Config) -> SACLoop:
    """Builds the env, the SAC learner and the loop's functions for `config`."""
    env = make_env(config)
    sac = make_sac(config.sac, int(env.observation_size), int(env.action_size))
    num_envs = config.num_envs
    updates_per_iter = config.updates_per_step * num_envs
    num_eval_steps = math.ceil(env.episode_length / config.action_repeat)
    init_state = functools.partial(init_train_state, env, sac, config)
    step_envs = functools.partial(env_iteration, env, sac, config)  # num_envs steps -> buffer

    def explore(state: State, key: jax.Array) -> State:
        n = config.init_random_steps // num_envs
        if n == 0:
            return state
        state, _ = jax.lax.scan(
            lambda s, k: (step_envs(s, k, random_actions=True), None), state,
            jax.random.split(key, n),
        )
        return state

    def init(key: jax.Array) -> TrainState:
        k_sac, k_env, k_explore, k_run = jax.random.split(key, 4)
        return explore(init_state(k_sac, k_env, k_run), k_explore)

    def learn_iteration(state: State, key: jax.Array, sample_batch: SampleFn,
                        targets_fn: TargetsFn = one_step_targets):
        k_env, k_update = jax.random.split(key)
        state = step_envs(state, k_env, random_actions=False)
        agent, metrics = sac.update_many(
            state.sac, lambda k: sample_batch(state, k), k_update, updates_per_iter, targets_fn
        )
        return state.replace(sac=agent), metrics

    def evaluate(actor_params: ActorParams, key: jax.Array) -> jax.Array:
        """Undiscounted returns [num_eval_episodes] of the deterministic policy."""
        act = lambda p, obs, k: sac.act(p, obs, k, deterministic=True)
        return acting.evaluate(env, act, actor_params, key, config.num_eval_episodes,
                               num_eval_steps)

    def finish_epoch(state: State, key: jax.Array, eval_key: jax.Array, sac_metrics: dict,
                     nonfinite: jax.Array | bool = False) -> tuple[State, EpochMetrics]:
        """Evaluates, averages the SAC metrics, advances the epoch and stores `key`."""
        returns = evaluate(state.sac.actor_params, eval_key)
        state = state.replace(key=key, epoch=state.epoch + 1)
        return state, _epoch_metrics(state, returns, sac_metrics, nonfinite)

    def sample_real(state: TrainState, key: jax.Array) -> Transition:
        return replay.sample(state.buffer, key, config.sac.batch_size)

    def epoch(state: TrainState) -> tuple[TrainState, EpochMetrics]:
        key, k_iters, k_eval = jax.random.split(state.key, 3)
        state, sac_metrics = jax.lax.scan(
            lambda s, k: learn_iteration(s, k, sample_real), state,
            jax.random.split(k_iters, config.steps_per_epoch // num_envs),
        )
        return finish_epoch(state, key, k_eval, sac_metrics)

    return SACLoop(
        init=jax.jit(init), epoch=epoch, init_state=init_state, explore=explore,
        learn_iteration=learn_iteration, finish_epoch=finish_epoch, evaluate=evaluate,
        config=config, env=env, sac=sac, num_eval_steps=num_eval_steps,
    )


def optional_float(x: Any) -> float | None:
    """A host scalar as float, None for NaN (records are JSON)."""
    v = float(np.asarray(x))
    return None if math.isnan(v) else v


def epoch_record(epoch: int, m: Any) -> dict[str, Any]:
    """The host record of one epoch's EpochMetrics (MBPO adds its model fields)."""
    record = {
        "episode": epoch,
        "epoch": epoch,
        "env_steps": int(m.env_steps),
        "episode_return": float(m.episode_return),
        "eval_return_std": float(m.eval_return_std),
        "train_return": optional_float(m.train_return),
    }
    record.update({k: optional_float(v) for k, v in sorted(m.sac.items())})
    return record


def make_program(config: Config, loop: SACLoop | None = None) -> Program:
    """SAC as a Program: `num_epochs` identical compiled epochs (with value_expansion "mve" or
    "steve", `expansion_loop.make_expansion_program`'s, whose epochs also refit a model)."""
    if config.value_expansion != "none":
        from mbjax.agents.sac.expansion_loop import make_expansion_program

        return make_expansion_program(config)
    loop = loop or make_loop(config)
    return Program(
        init=loop.init, segments=(Segment(loop.epoch, config.num_epochs),),
        to_record=epoch_record, on_nonfinite=config.on_nonfinite,
    )


def make_train(config: Config) -> Callable[[jax.Array], tuple[TrainState, EpochMetrics]]:
    """A pure `train(key) -> (final_state, metrics)`; metrics leaves are [num_epochs].

    `jax.jit(jax.vmap(make_train(config)))(keys)` runs a seed sweep as one program.
    """
    return make_pure_train(make_program(config))


def actor_policy(sac: SAC, actor_params: ActorParams, deterministic: bool = True) -> PolicyFactory:
    """(init_carry, policy) acting with a SAC actor: init_carry(key) -> () (no carry);
    policy(carry, obs [..., obs_dim], key) -> (carry, action [..., A], {}), the policy's mode when
    `deterministic`, else a sample. Pure and jittable."""

    def init_carry(key: jax.Array):
        del key
        return ()

    def policy(carry, obs: jax.Array, key: jax.Array):
        return carry, sac.act(actor_params, obs, key, deterministic=deterministic), {}

    return init_carry, policy


def make_policy(config: Any, state: TrainState, deterministic: bool = True) -> PolicyFactory:
    """(init_carry, policy) acting with the final state's SAC actor (see `actor_policy`).

    config: a Config, or any config with `env`, `episode_length`, `action_repeat` and `sac`
    (MBPO's); state: a TrainState or an extension of it (MBPOState).
    """
    env = make_env(config)
    sac = make_sac(config.sac, int(env.observation_size), int(env.action_size))
    return actor_policy(sac, state.sac.actor_params, deterministic)
