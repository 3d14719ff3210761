"""The BPTT / SVG loop as pure functions: one compiled epoch, a Program, the policy.

Structure of one epoch (one `lax.scan`, no `lax.cond`):
  scan over blocks_per_epoch blocks:
      refit the model on the real buffer (a no-op for the true dynamics)
      scan over model_train_every / num_envs iterations:
          step num_envs envs with the exploring policy (auto-reset) -> real buffer
          updates_per_step * num_envs pathwise updates from real start states
  evaluate the mean action on num_eval_episodes episodes.
The uniform-random exploration before the first epoch runs in `init`. Env interaction is
`mbjax.acting`'s (auto-reset batches, masked evaluation episodes), as in SAC and MBPO.
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

from mbjax import acting, replay
from mbjax import envs as mbjax_envs
from mbjax.agents.algorithm import PolicyFactory
from mbjax.agents.bptt.config import Config
from mbjax.agents.bptt.learner import Learner, LearnerState, explore, make_learner
from mbjax.agents.pathwise import make_true_model
from mbjax.agents.program import Program, Segment
from mbjax.agents.sac.train import make_env, optional_float
from mbjax.models import FitMetrics, all_finite, make_ensemble


@struct.dataclass
class BPTTState:
    """learner: policy/value state; model: the model's state (() for the true dynamics);
    buffer: real transitions; envs: `acting.EnvBatch` [num_envs]; key; epoch / env_steps."""

    learner: LearnerState
    model: Any
    buffer: replay.ReplayBuffer
    envs: acting.EnvBatch
    key: jax.Array
    epoch: jax.Array
    env_steps: jax.Array


class EpochMetrics(NamedTuple):
    """Per-epoch scalars: evaluation returns (mean / std), training envs' last returns, NaN/Inf
    met, the pathwise objective / model return / gradient norm / value loss (means over the
    epoch's updates; value_loss NaN without SVG(1)) and the model fits' mean losses."""

    env_steps: jax.Array
    episode_return: jax.Array
    eval_return_std: jax.Array
    train_return: jax.Array
    nonfinite: jax.Array
    learner: dict
    model_train_mse: jax.Array
    model_holdout_mse: jax.Array


class BPTT(NamedTuple):
    """init(key) -> BPTTState (random exploration included); epoch(state) -> (state, metrics)."""

    config: Config
    env: Any
    model: Any
    learner: Learner
    init: Callable[[jax.Array], BPTTState]
    epoch: Callable[[BPTTState], tuple[BPTTState, EpochMetrics]]


def make_model(config: Config, env: Any) -> tuple[Any, Any, Any]:
    """(model, reward_fn, termination_fn): the true dynamics (rewards and terminations from the
    task's physics) or the ensemble with the known task functions / learned heads."""
    if config.dynamics == "true":
        return make_true_model(env), None, None
    obs_size, action_size = int(env.observation_size), int(env.action_size)
    model = make_ensemble(config.model, obs_size, action_size)
    reward_fn, termination_fn = mbjax_envs.resolve_task(
        config.env, config.learned_reward, config.learned_termination,
        config.use_estimated_reward)
    return model, reward_fn, termination_fn


def make_bptt(config: Config) -> BPTT:
    """Builds the env, the model and the epoch function for `config`."""
    env = make_env(config)
    obs_size, action_size = int(env.observation_size), int(env.action_size)
    model, reward_fn, termination_fn = make_model(config, env)
    learner = make_learner(config, model, obs_size, action_size, reward_fn, termination_fn)
    gaussian = config.policy == "gaussian"
    num_envs = config.num_envs
    num_eval_steps = math.ceil(env.episode_length / config.action_repeat)

    def step_envs(state: BPTTState, key: jax.Array, random_actions: bool) -> BPTTState:
        k_act, k_reset = jax.random.split(key)
        obs = state.envs.state.obs
        if random_actions:
            action = acting.random_actions(k_act, (num_envs, action_size))
        else:
            action = explore(learner, state.learner, obs, k_act, gaussian)
        envs, transitions = acting.step_batch(env, state.envs, action, k_reset)
        return state.replace(buffer=replay.add(state.buffer, transitions), envs=envs,
                             env_steps=state.env_steps + num_envs * config.action_repeat)

    def init(key: jax.Array) -> BPTTState:
        k_learner, k_model, k_env, k_explore, k_run = jax.random.split(key, 5)
        state = BPTTState(
            learner=learner.init(k_learner), model=model.init(k_model),
            buffer=replay.init(config.capacity, acting.empty_transition(obs_size, action_size)),
            envs=acting.reset_batch(env, k_env, num_envs), key=k_run,
            epoch=jnp.zeros((), jnp.int32), env_steps=jnp.zeros((), jnp.int32),
        )
        n = config.init_random_steps // num_envs
        if n:
            state, _ = jax.lax.scan(lambda s, k: (step_envs(s, k, True), None), state,
                                    jax.random.split(k_explore, n))
        return state

    def learn_iteration(state: BPTTState, key: jax.Array) -> tuple[BPTTState, dict]:
        k_env, k_updates = jax.random.split(key)
        state = step_envs(state, k_env, False)

        def one(learner_state: LearnerState, k: jax.Array):
            k_start, k_update = jax.random.split(k)
            starts = replay.sample(state.buffer, k_start, config.num_starts).obs
            return learner.update(learner_state, state.model, starts, k_update)

        learner_state, metrics = jax.lax.scan(
            one, state.learner, jax.random.split(k_updates, config.updates_per_step * num_envs))
        return state.replace(learner=learner_state), jax.tree_util.tree_map(jnp.mean, metrics)

    def block(state: BPTTState, key: jax.Array) -> tuple[BPTTState, tuple]:
        k_fit, k_iters = jax.random.split(key)
        model_state, fit_info = model.fit(state.model, state.buffer, k_fit)
        state = state.replace(model=model_state)
        state, metrics = jax.lax.scan(
            learn_iteration, state,
            jax.random.split(k_iters, config.model_train_every // num_envs))
        return state, (FitMetrics.of(fit_info), jax.tree_util.tree_map(jnp.mean, metrics))

    def evaluate(state: BPTTState, key: jax.Array) -> jax.Array:
        act = lambda p, obs, k: learner.act(p, obs, k, deterministic=True)
        return acting.evaluate(env, act, state.learner.policy_params, key,
                               config.num_eval_episodes, num_eval_steps)

    def epoch(state: BPTTState) -> tuple[BPTTState, EpochMetrics]:
        key, k_blocks, k_eval = jax.random.split(state.key, 3)
        state, (fit, learner_m) = jax.lax.scan(
            block, state, jax.random.split(k_blocks, config.blocks_per_epoch))
        returns = evaluate(state, k_eval)
        learner_m = jax.tree_util.tree_map(jnp.mean, learner_m)
        finite = all_finite(learner_m) & all_finite(returns) & all_finite(state.buffer.data)
        learner_m.setdefault("value_loss", jnp.full((), jnp.nan, jnp.float32))  # no SVG(1)
        state = state.replace(key=key, epoch=state.epoch + 1)
        return state, EpochMetrics(
            env_steps=state.env_steps, episode_return=jnp.mean(returns),
            eval_return_std=jnp.std(returns), train_return=acting.mean_last_return(state.envs),
            nonfinite=jnp.any(fit.nonfinite) | ~finite, learner=learner_m,
            model_train_mse=jnp.mean(fit.train_loss),
            model_holdout_mse=jnp.mean(fit.holdout_loss),
        )

    return BPTT(config=config, env=env, model=model, learner=learner, init=jax.jit(init),
                epoch=epoch)


def epoch_record(epoch: int, m: EpochMetrics) -> dict[str, Any]:
    """The host record of one epoch."""
    record = {
        "episode": epoch, "epoch": epoch, "env_steps": int(m.env_steps),
        "episode_return": float(m.episode_return),
        "eval_return_std": float(m.eval_return_std),
        "train_return": optional_float(m.train_return),
        "model_train_mse": optional_float(m.model_train_mse),
        "model_holdout_mse": optional_float(m.model_holdout_mse),
    }
    record.update({k: optional_float(v) for k, v in sorted(m.learner.items())})
    return record


def make_program(config: Config, bptt: BPTT | None = None) -> Program:
    """BPTT as a Program: `num_epochs` identical compiled epochs."""
    bptt = bptt or make_bptt(config)
    return Program(init=bptt.init, segments=(Segment(bptt.epoch, config.num_epochs),),
                   to_record=epoch_record, on_nonfinite=config.on_nonfinite)


def make_policy(config: Config, state: BPTTState, deterministic: bool = True) -> PolicyFactory:
    """(init_carry, policy): the final policy's mean action (or its samples when not
    `deterministic`); init_carry(key) -> (), policy(carry, obs [S], key) -> (carry, action, {})."""
    env = make_env(config)
    learner = make_learner(config, None, int(env.observation_size), int(env.action_size),
                           None, None)
    params = state.learner.policy_params

    def init_carry(key: jax.Array):
        del key
        return ()

    def policy(carry, obs: jax.Array, key: jax.Array):
        return carry, learner.act(params, obs, key, deterministic=deterministic), {}

    return init_carry, policy
