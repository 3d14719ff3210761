"""The PETS loop as pure functions: one compiled episode, `make_train(config) -> train(key)`.

Loop (the lecture notes' model-based RL v0.5 / v1.0 / v1.5):
  `num_seed_episodes` episodes with uniform random actions, then per episode:
  refit the ensemble on all data (v1.0 / v1.5; v0.5 fits once), run one episode planning with the
  model, add its transitions to the buffer.

An episode is one `lax.scan`: an outer scan over plans and an inner scan over the
`steps_per_plan` actions executed from each plan (so replanning every N steps costs no
`lax.cond`). Steps after a termination are masked (not stored, no reward).
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from mbjax import envs as mbjax_envs
from mbjax import replay
from mbjax.agents.pets.config import Config
from mbjax.agents.program import Program, Segment, make_pure_train
from mbjax.models import ModelState, make_ensemble
from mbjax.planners import make_planner
from mbjax.rollout import make_model_objective
from mbjax.types import Transition


@struct.dataclass
class PETSState:
    """Everything a PETS run needs to continue, as one pytree (what checkpoints hold).

    model: ensemble params, normalizer, optimizer state, elites; buffer: all real transitions;
    key: the run's PRNG key; episode / env_steps: counters (int32 scalars).
    """

    model: ModelState
    buffer: replay.ReplayBuffer
    key: jax.Array
    episode: jax.Array
    env_steps: jax.Array


class EpisodeMetrics(NamedTuple):
    """Per-episode scalars (stacked over episodes by `make_train`)."""

    env_steps: jax.Array
    episode_return: jax.Array
    episode_length: jax.Array
    model_train_mse: jax.Array
    model_holdout_mse: jax.Array
    nonfinite: jax.Array
    planned_return: jax.Array


class PETS(NamedTuple):
    """Function bundle built from a Config (all pure; jit where you call them).

    init(key) -> PETSState
    seed_episode(state) -> (state, EpisodeMetrics)          uniform random actions
    learning_episode(state, fit: bool) -> (state, EpisodeMetrics)   refit (if fit) then MPC
    policy_step(model_state, planner_state, obs, key) -> (action [A], planner_state, info)
    """

    config: Config
    env: Any
    model: Any
    planner: Any
    num_steps: int
    init: Callable[[jax.Array], PETSState]
    seed_episode: Callable[[PETSState], tuple[PETSState, EpisodeMetrics]]
    learning_episode: Callable[..., tuple[PETSState, EpisodeMetrics]]
    plan: Callable[..., tuple[jax.Array, Any, dict]]


def resolve_task(config: Config) -> tuple[Callable | None, Callable | None]:
    """Known reward/termination functions for the env, or None where the model learns them."""
    reward_fn = termination_fn = None
    if not (config.learned_reward and config.learned_termination):
        task = mbjax_envs.task_fns(config.env)
        if not config.learned_reward:
            if not task.reward_is_exact and not config.use_estimated_reward:
                raise ValueError(
                    f"env {config.env!r}: its reward cannot be computed exactly from observations "
                    f"({task.note}); use learned_reward=True with model.predict_reward=True, or "
                    "use_estimated_reward=True to plan with the estimate"
                )
            reward_fn = task.reward_fn
        if not config.learned_termination:
            termination_fn = task.termination_fn
    return reward_fn, termination_fn


def make_pets(config: Config) -> PETS:
    """Builds the environment, ensemble, planner and the episode functions for `config`."""
    env = mbjax_envs.make(
        config.env, episode_length=config.episode_length, action_repeat=config.action_repeat
    )
    # Agent steps per episode (the wrapper counts the time limit in env steps).
    num_steps = math.ceil(env.episode_length / config.action_repeat)
    obs_size, action_size = env.observation_size, env.action_size
    model = make_ensemble(config.model, obs_size, action_size)
    planner = make_planner(config.planner, config.planner_config)
    reward_fn, termination_fn = resolve_task(config)
    objective_for = make_model_objective(model, config.propagation, reward_fn, termination_fn)
    steps_per_plan = min(config.steps_per_plan, num_steps)
    num_plans = math.ceil(num_steps / steps_per_plan)
    capacity = config.num_episodes * num_steps

    def init(key: jax.Array) -> PETSState:
        k_model, k_run = jax.random.split(key)
        example = Transition(
            obs=jnp.zeros(obs_size), action=jnp.zeros(action_size), reward=jnp.zeros(()),
            next_obs=jnp.zeros(obs_size), terminated=jnp.zeros(()),
        )
        return PETSState(
            model=model.init(k_model),
            buffer=replay.init(capacity, example),
            key=k_run,
            episode=jnp.zeros((), jnp.int32),
            env_steps=jnp.zeros((), jnp.int32),
        )

    def env_step(carry, action):
        """One masked env step; carry = (env_state, alive, return, length)."""
        env_state, alive, ret, length = carry
        next_state = env.step(env_state, action)
        truncation = next_state.info.get("truncation", jnp.zeros_like(next_state.done))
        terminated = next_state.done * (1.0 - truncation)
        transition = Transition(
            obs=env_state.obs, action=action, reward=next_state.reward,
            next_obs=next_state.obs, terminated=terminated,
        )
        # `where`: an env stepped past its termination may produce NaN, and NaN * 0 is NaN.
        ret = ret + jnp.where(alive > 0, next_state.reward, 0.0)
        carry = (next_state, alive * (1.0 - terminated), ret, length + alive)
        return carry, (transition, alive)

    def finish(state: PETSState, key, transitions, valid, ret, length, fit_metrics, planned):
        flat = jax.tree_util.tree_map(lambda x: x.reshape((-1,) + x.shape[2:]), transitions)
        valid = valid.reshape(-1)[:num_steps]
        flat = jax.tree_util.tree_map(lambda x: x[:num_steps], flat)
        buffer = replay.add_masked(state.buffer, flat, valid)
        new_state = state.replace(
            buffer=buffer, key=key, episode=state.episode + 1,
            env_steps=state.env_steps + jnp.sum(valid, dtype=jnp.int32) * config.action_repeat,
        )
        metrics = EpisodeMetrics(
            env_steps=new_state.env_steps, episode_return=ret, episode_length=length,
            model_train_mse=fit_metrics[0], model_holdout_mse=fit_metrics[1],
            nonfinite=fit_metrics[2], planned_return=planned,
        )
        return new_state, metrics

    def seed_episode(state: PETSState) -> tuple[PETSState, EpisodeMetrics]:
        key, k_reset, k_act = jax.random.split(state.key, 3)
        actions = jax.random.uniform(
            k_act, (num_plans, steps_per_plan, action_size), minval=-1.0, maxval=1.0
        )
        env_state = env.reset(k_reset)
        carry = (env_state, jnp.ones(()), jnp.zeros(()), jnp.zeros(()))

        def plan_chunk(carry, chunk):
            return jax.lax.scan(env_step, carry, chunk)

        (_, _, ret, length), (transitions, valid) = jax.lax.scan(plan_chunk, carry, actions)
        nan = jnp.full((), jnp.nan)
        no_fit = (nan, nan, jnp.zeros((), bool))
        return finish(state, key, transitions, valid, ret, length, no_fit, nan)

    def plan(model_state: ModelState, planner_state: Any, obs: jax.Array, key: jax.Array):
        """One MPC decision: the action sequence [H, A] planned from `obs` under the model."""
        k_obj, k_plan = jax.random.split(key)
        objective = objective_for(model_state, obs, k_obj)
        return planner.plan(planner_state, objective, obs, k_plan)

    def learning_episode(state: PETSState, fit: bool = True) -> tuple[PETSState, EpisodeMetrics]:
        key, k_fit, k_reset, k_plan_init, k_episode = jax.random.split(state.key, 5)
        model_state = state.model
        if fit:
            model_state, fit_info = model.fit(model_state, state.buffer, k_fit)
            elites = model_state.elites
            fit_metrics = (
                jnp.mean(fit_info["train_mse"][elites]),
                jnp.mean(fit_info["holdout_mse"][elites]),
                fit_info["nonfinite"],
            )
        else:
            fit_metrics = (jnp.full((), jnp.nan), jnp.full((), jnp.nan), jnp.zeros((), bool))
        env_state = env.reset(k_reset)
        planner_state = planner.init(action_size, k_plan_init)

        def plan_and_act(carry, k):
            env_carry, planner_state = carry
            actions, planner_state, info = plan(model_state, planner_state, env_carry[0].obs, k)
            env_carry, out = jax.lax.scan(env_step, env_carry, actions[:steps_per_plan])
            planner_state = planner.shift(planner_state, steps_per_plan)
            return (env_carry, planner_state), (out, info["best_return"])

        env_carry = (env_state, jnp.ones(()), jnp.zeros(()), jnp.zeros(()))
        keys = jax.random.split(k_episode, num_plans)
        ((_, _, ret, length), _), ((transitions, valid), planned) = jax.lax.scan(
            plan_and_act, (env_carry, planner_state), keys
        )
        state = state.replace(model=model_state)
        return finish(state, key, transitions, valid, ret, length, fit_metrics, planned.mean())

    return PETS(
        config=config, env=env, model=model, planner=planner, num_steps=num_steps, init=init,
        seed_episode=seed_episode, learning_episode=learning_episode, plan=plan,
    )


def make_program(config: Config, pets: PETS | None = None) -> Program:
    """The PETS run as a Program: seed episodes, one learning episode that fits, the rest."""
    pets = pets or make_pets(config)
    n_seed = config.num_seed_episodes
    n_learn = config.num_episodes - n_seed
    rest_fits = config.variant != "v0.5"  # v0.5 fits once, on the random data only

    def to_record(episode: int, m: EpisodeMetrics) -> dict[str, Any]:
        def num(x):
            v = float(np.asarray(x))
            return None if np.isnan(v) else v

        return {
            "episode": episode,
            "env_steps": int(m.env_steps),
            "episode_return": float(m.episode_return),
            "episode_length": int(m.episode_length),
            "model_train_mse": num(m.model_train_mse),
            "model_holdout_mse": num(m.model_holdout_mse),
            "planned_return": num(m.planned_return),
        }

    return Program(
        init=pets.init,
        segments=(
            Segment(pets.seed_episode, n_seed),
            Segment(functools.partial(pets.learning_episode, fit=True), 1),
            Segment(functools.partial(pets.learning_episode, fit=rest_fits), n_learn - 1),
        ),
        to_record=to_record,
    )


def make_train(config: Config) -> Callable[[jax.Array], tuple[PETSState, EpisodeMetrics]]:
    """A pure `train(key) -> (final_state, metrics)`; metrics leaves are [num_episodes].

    `jax.jit(jax.vmap(make_train(config)))(keys)` runs a seed sweep as one program. The host
    driver (`mbjax.agents.pets.train`) runs the same episode functions one at a time.
    """
    return make_pure_train(make_program(config))
