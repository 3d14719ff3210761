"""MB-PPO as one compiled Program: seed episodes, then per episode refit the ensemble, run PPO on
imagined rollouts until ME-TRPO's validation stops it, and collect one real episode.

Shapes: N rollouts, H imagined steps, K elites, T agent steps per real episode.
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from mbjax import acting, replay
from mbjax import envs as mbjax_envs
from mbjax.agents.mbppo import ppo
from mbjax.agents.mbppo.config import Config
from mbjax.agents.pathwise import make_true_model
from mbjax.agents.program import Program, Segment
from mbjax.envs.discrete import require_continuous
from mbjax.models import FitMetrics, all_finite, make_ensemble
from mbjax.rollout.transition import make_model_transition


class MBPPOState(NamedTuple):
    """params / opt_state: actor, critic and log-std with Adam's state; model: the ensemble's
    state; buffer: real transitions; key; episode, env_steps: [] int32."""

    params: Any
    opt_state: Any
    model: Any
    buffer: replay.ReplayBuffer
    key: jax.Array
    episode: jax.Array
    env_steps: jax.Array


class EpisodeMetrics(NamedTuple):
    env_steps: jax.Array
    episode_return: jax.Array  # the deterministic policy's mean evaluation return
    train_return: jax.Array  # the collected (stochastic) episode's return
    policy_iterations: jax.Array  # PPO iterations run before validation stopped them
    improvement_fraction: jax.Array  # elites that saw the last iteration improve
    imagined_gain: jax.Array  # mean elite score (H-step imagined return) after minus before
    model_return: jax.Array  # the evaluated policy's imagined full-episode return, elite mean
    policy_std: jax.Array  # the Gaussian's std, mean over action dimensions
    model_train_mse: jax.Array
    model_holdout_mse: jax.Array
    nonfinite: jax.Array


class Parts(NamedTuple):
    env: Any
    model: Any
    transition: Any
    nets: ppo.Nets
    optimizer: Any
    num_steps: int


def make_env(config: Config) -> Any:
    env = mbjax_envs.make(config.env, episode_length=config.episode_length,
                          action_repeat=config.action_repeat)
    return require_continuous(env, config.env, "mbppo")


def make_parts(config: Config) -> Parts:
    env = make_env(config)
    obs_size, action_size = int(env.observation_size), int(env.action_size)
    reward_fn, termination_fn = mbjax_envs.resolve_task(
        config.env, config.learned_reward, config.learned_termination,
        config.use_estimated_reward)
    if config.dynamics == "true":  # the task's physics, reward and termination
        model = make_true_model(env)
        transition = make_model_transition(model)
    else:
        model = make_ensemble(config.model, obs_size, action_size)
        transition = make_model_transition(model, reward_fn, termination_fn, "soft")
    return Parts(env=env, model=model, transition=transition,
                 nets=ppo.make_nets(config.ppo, action_size),
                 optimizer=ppo.make_optimizer(config.ppo),
                 num_steps=math.ceil(env.episode_length / config.action_repeat))


def real_episode(env: Any, act: Any, num_steps: int, key: jax.Array):
    """One masked episode of act(obs [S], key) -> action [A]: (Episode, EpisodeStep [T])."""
    k_reset, k_steps = jax.random.split(key)

    def body(ep, k):
        return acting.episode_step(env, ep, act(ep.state.obs, k))

    return jax.lax.scan(body, acting.start_episode(env, k_reset),
                        jax.random.split(k_steps, num_steps))


class _Loop(NamedTuple):
    """The carry of the policy-iteration loop."""

    params: Any
    opt_state: Any
    passed_params: Any  # the last policy that passed a check (the incoming one at first)
    reference: jax.Array  # [K] the per-elite scores of the last passed policy
    scores: jax.Array  # [K] the latest per-elite scores
    iteration: jax.Array
    failures: jax.Array  # failed checks in a row
    fraction: jax.Array
    key: jax.Array


def policy_iterations(parts: Parts, config: Config, state: MBPPOState, model_state: Any,
                      key: jax.Array) -> tuple[_Loop, jax.Array]:
    """PPO iterations on fresh imagined batches until `validation_patience` checks in a row
    find fewer than improvement_ratio of the elites scoring the policy above the last passed
    one (at most policy_iterations). -> (the final carry, the incoming policy's mean score)."""
    elites = parts.model.elites(model_state)
    k_starts, k_score, k_loop = jax.random.split(key, 3)
    score_starts = replay.sample(state.buffer, k_starts, min(config.num_rollouts, 128)).obs
    score = functools.partial(ppo.member_scores, parts.nets, parts.transition, model_state,
                              elites, starts=score_starts, horizon=config.horizon, key=k_score)

    def body(c: _Loop) -> _Loop:
        key, k_s, k_im, k_up = jax.random.split(c.key, 4)
        starts = replay.sample(state.buffer, k_s, config.num_rollouts).obs
        batch = ppo.imagine(parts.nets, parts.transition, model_state, elites, c.params,
                            starts, config.horizon, k_im)
        params, opt_state, _ = ppo.ppo_update(parts.nets, config.ppo, parts.optimizer,
                                              c.params, c.opt_state, batch, k_up)
        scores = score(params=params)
        fraction = jnp.mean((scores > c.reference).astype(jnp.float32))
        passed = fraction >= config.improvement_ratio
        keep = jax.tree_util.tree_map(lambda new, old: jnp.where(passed, new, old), params,
                                      c.passed_params)
        return _Loop(params, opt_state, keep, jnp.where(passed, scores, c.reference), scores,
                     c.iteration + 1, jnp.where(passed, 0, c.failures + 1), fraction, key)

    def cond(c: _Loop) -> jax.Array:
        return (c.failures < config.validation_patience) & (c.iteration < config.policy_iterations)

    initial = score(params=state.params)
    zero = jnp.zeros((), jnp.int32)
    start = _Loop(state.params, state.opt_state, state.params, initial, initial, zero, zero,
                  jnp.ones(()), k_loop)
    return jax.lax.while_loop(cond, body, start), jnp.mean(initial)


def learning_episode(parts: Parts, config: Config, state: MBPPOState):
    key, k_fit, k_pol, k_ep, k_eval = jax.random.split(state.key, 5)
    model_state, fit_info = parts.model.fit(state.model, state.buffer, k_fit)
    loop, initial_score = policy_iterations(parts, config, state, model_state, k_pol)
    if config.keep_passed_policy:  # the validated policy, not PPO's last (maybe worse) step
        loop = loop._replace(params=loop.passed_params, scores=loop.reference)
    act = lambda obs, k: jnp.clip(ppo.sample(parts.nets, loop.params, obs, k)[0], -1.0, 1.0)
    episode, steps = real_episode(parts.env, act, parts.num_steps, k_ep)
    greedy = lambda p, obs, k: ppo.mean_action(parts.nets, p, obs)
    returns = acting.evaluate(parts.env, greedy, loop.params, k_eval, config.num_eval_episodes,
                              parts.num_steps)
    fit = FitMetrics.of(fit_info)
    model_return = imagined_episode_return(parts, config, model_state, loop.params, k_eval)
    return _finish(config, state, key, loop.params, loop.opt_state, model_state, steps,
                   episode, returns, loop, fit, jnp.mean(loop.scores) - initial_score,
                   model_return)


def imagined_episode_return(parts: Parts, config: Config, model_state: Any, params: Any,
                            k_eval: jax.Array) -> jax.Array:
    """[] the deterministic policy's undiscounted return over a whole episode imagined by each
    elite from the evaluation episodes' own start states (same keys as `acting.evaluate`),
    averaged: beside `episode_return` it shows how far the model's returns are from the real
    ones along the policy's own states."""
    starts = jax.vmap(parts.env.reset)(jax.random.split(k_eval, config.num_eval_episodes)).obs
    scores = ppo.member_scores(parts.nets, parts.transition, model_state,
                               parts.model.elites(model_state), params, starts,
                               parts.num_steps, jax.random.fold_in(k_eval, 1))
    return jnp.mean(scores)


def seed_episode(parts: Parts, config: Config, state: MBPPOState):
    key, k_ep = jax.random.split(state.key)
    a_size = int(parts.env.action_size)
    act = lambda obs, k: acting.random_actions(k, (a_size,))
    episode, steps = real_episode(parts.env, act, parts.num_steps, k_ep)
    nan = jnp.full((), jnp.nan)
    zero = jnp.zeros((), jnp.int32)
    loop = _Loop(None, None, None, None, None, zero, zero, nan, None)
    return _finish(config, state, key, state.params, state.opt_state, state.model, steps,
                   episode, episode.episode_return[None], loop, FitMetrics.none(), nan, nan)


def _finish(config, state, key, params, opt_state, model_state, steps, episode, returns,
            loop, fit, imagined_gain, model_return):
    buffer = replay.add_masked(state.buffer, steps.transition, steps.valid)
    env_steps = state.env_steps + jnp.sum(steps.valid, dtype=jnp.int32) * config.action_repeat
    new = MBPPOState(params, opt_state, model_state, buffer, key, state.episode + 1, env_steps)
    metrics = EpisodeMetrics(
        env_steps=env_steps, episode_return=jnp.mean(returns),
        train_return=episode.episode_return, policy_iterations=loop.iteration,
        improvement_fraction=loop.fraction, imagined_gain=imagined_gain,
        model_return=model_return, policy_std=jnp.mean(jnp.exp(params["log_std"])),
        model_train_mse=fit.train_loss,
        model_holdout_mse=fit.holdout_loss,
        nonfinite=fit.nonfinite | ~all_finite(params) | ~all_finite(returns))
    return new, metrics


def make_init(parts: Parts, config: Config):
    obs_size, action_size = int(parts.env.observation_size), int(parts.env.action_size)
    capacity = config.num_episodes * parts.num_steps

    def init(key: jax.Array) -> MBPPOState:
        k_p, k_m, k_run = jax.random.split(key, 3)
        params = ppo.init_params(parts.nets, config.ppo, obs_size, action_size, k_p)
        return MBPPOState(params, parts.optimizer.init(params), parts.model.init(k_m),
                          replay.init(capacity, acting.empty_transition(obs_size, action_size)),
                          k_run, jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))

    return init


def record(i: int, m: EpisodeMetrics) -> dict[str, Any]:
    def num(x):
        v = float(x)
        return None if math.isnan(v) else v

    return {"episode": i, "env_steps": int(m.env_steps),
            "episode_return": float(m.episode_return), "train_return": float(m.train_return),
            "policy_iterations": int(m.policy_iterations),
            "improvement_fraction": num(m.improvement_fraction),
            "imagined_gain": num(m.imagined_gain), "model_return": num(m.model_return),
            "policy_std": float(m.policy_std),
            "model_train_mse": num(m.model_train_mse),
            "model_holdout_mse": num(m.model_holdout_mse)}


def make_program(config: Config) -> Program:
    parts = make_parts(config)
    n_seed = config.num_seed_episodes
    return Program(
        init=jax.jit(make_init(parts, config)),
        segments=(Segment(functools.partial(seed_episode, parts, config), n_seed),
                  Segment(functools.partial(learning_episode, parts, config),
                          config.num_episodes - n_seed)),
        to_record=record, on_nonfinite=config.on_nonfinite)


def make_policy(config: Config, state: MBPPOState):
    """(init_carry, policy): the deterministic actor, policy(carry, obs [S], key)."""
    env = make_env(config)
    nets = ppo.make_nets(config.ppo, int(env.action_size))

    def init_carry(key: jax.Array):
        del key
        return ()

    def policy(carry, obs: jax.Array, key: jax.Array):
        del key
        return carry, ppo.mean_action(nets, state.params, obs), {}

    return init_carry, policy


def grid_leaves(config: Config) -> dict:
    """PPO's learning rate (a leaf of its Adam state) and the ensemble's (none for the true
    dynamics)."""
    from mbjax import optim
    from mbjax.grid import model_leaves

    model = model_leaves() if config.dynamics == "ensemble" else {}
    return {"ppo.learning_rate": lambda state, v: state._replace(
        opt_state=optim.set_hyperparams(state.opt_state, learning_rate=v)), **model}
