"""The PETS loop as pure functions: one compiled episode, `make_train(config) -> train(key)`.

Loop (the lecture notes' model-based RL v0.5 / v1.0 / v1.5):
  `num_seed_episodes` episodes with uniform random actions, then per episode:
  refit the ensemble on all data (v1.0 / v1.5; v0.5 fits once), run one episode planning with the
  model, add its transitions to the buffer.

An episode is one `lax.scan`: an outer scan over plans and an inner scan over the
`steps_per_plan` actions executed from each plan (so replanning every N steps costs no
`lax.cond`). Env steps are `mbjax.acting.episode_step`s: steps after the episode's end are
masked (not stored, no reward).
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from mbjax import acting, replay
from mbjax import envs as mbjax_envs
from mbjax.agents.pets.config import Config
from mbjax.agents.program import Program, Segment, make_pure_train
from mbjax.models import FitMetrics, all_finite, learner_model
from mbjax.planners import make_planner
from mbjax.rollout import make_model_objective


@struct.dataclass
class PETSState:
    """Everything a PETS run needs to continue, as one pytree (what checkpoints hold).

    model: ensemble params, normalizer, optimizer state, elites; buffer: all real transitions;
    key: the run's PRNG key; episode / env_steps: counters (int32 scalars).
    """

    model: Any  # the model's state (an ensemble's ModelState by default)
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


class PlanCarry(NamedTuple):
    """The carry of a learning episode's scan over plans."""

    episode: acting.Episode
    planner_state: Any


class EpisodeLayout(NamedTuple):
    """How an episode's agent steps split into plans (static ints)."""

    num_steps: int  # agent steps per episode
    steps_per_plan: int  # actions executed from each plan
    num_plans: int  # ceil(num_steps / steps_per_plan); the last plan may run past the end
    action_repeat: int  # env steps per agent step


def finish_episode(layout: EpisodeLayout, state: PETSState, key: jax.Array,
                   episode: acting.Episode, steps: acting.EpisodeStep, fit: FitMetrics,
                   planned: jax.Array) -> tuple[PETSState, EpisodeMetrics]:
    """Stores the episode's valid transitions (steps: leaves [num_plans, steps_per_plan]).

    `nonfinite` is the fit's (a NaN/Inf loss) or a NaN/Inf in the buffer (the env returned one:
    the buffer was finite before, since a non-finite episode is rolled back or stops the run).
    """
    flat = jax.tree_util.tree_map(
        lambda x: x.reshape((-1,) + x.shape[2:])[:layout.num_steps], steps
    )
    buffer = replay.add_masked(state.buffer, flat.transition, flat.valid)
    new_state = state.replace(
        buffer=buffer, key=key, episode=state.episode + 1,
        env_steps=state.env_steps
        + jnp.sum(flat.valid, dtype=jnp.int32) * layout.action_repeat,
    )
    metrics = EpisodeMetrics(
        env_steps=new_state.env_steps, episode_return=episode.episode_return,
        episode_length=episode.length, model_train_mse=fit.train_loss,
        model_holdout_mse=fit.holdout_loss, nonfinite=fit.nonfinite | ~all_finite(buffer.data),
        planned_return=planned,
    )
    return new_state, metrics


def seed_episode(env: Any, layout: EpisodeLayout,
                 state: PETSState) -> tuple[PETSState, EpisodeMetrics]:
    """One episode of uniform random actions into the buffer (no fit, no planning)."""
    key, k_reset, k_act = jax.random.split(state.key, 3)
    actions = acting.random_actions(
        k_act, (layout.num_plans, layout.steps_per_plan, env.action_size)
    )
    env_step = functools.partial(acting.episode_step, env)
    episode, steps = jax.lax.scan(
        lambda ep, chunk: jax.lax.scan(env_step, ep, chunk),
        acting.start_episode(env, k_reset), actions,
    )
    return finish_episode(layout, state, key, episode, steps, FitMetrics.none(),
                          jnp.full((), jnp.nan))


def mpc_plan(objective_for: Callable[..., Any], planner: Any, model_state: Any,
             planner_state: Any, obs: jax.Array, key: jax.Array) -> tuple[jax.Array, Any, dict]:
    """One MPC decision: the action sequence [H, A] planned from `obs` [obs_size] under the model.

    objective_for: `make_model_objective`'s function; returns (actions, planner_state, info).
    """
    k_obj, k_plan = jax.random.split(key)
    objective = objective_for(model_state, obs, k_obj)
    return planner.plan(planner_state, objective, obs, k_plan)


def make_pets(config: Config, model: Any = None) -> PETS:
    """Builds the environment, ensemble, planner and the episode functions for `config`.

    model: any dynamics-model protocol implementation (`mbjax.models.base`) to use instead of
    the ensemble described by `config.model` (which is then ignored).
    """
    env = mbjax_envs.make(
        config.env, episode_length=config.episode_length, action_repeat=config.action_repeat
    )
    # Agent steps per episode (the wrapper counts the time limit in env steps).
    num_steps = math.ceil(env.episode_length / config.action_repeat)
    obs_size, action_size = env.observation_size, env.action_size
    model = learner_model(model, config, obs_size, action_size, "make_pets")
    planner = make_planner(config.planner, config.planner_config)
    reward_fn, termination_fn = mbjax_envs.resolve_task(
        config.env, config.learned_reward, config.learned_termination,
        config.use_estimated_reward,
    )
    objective_for = make_model_objective(model, config.propagation, reward_fn, termination_fn)
    steps_per_plan = min(config.steps_per_plan, num_steps)
    num_plans = math.ceil(num_steps / steps_per_plan)
    layout = EpisodeLayout(num_steps, steps_per_plan, num_plans, config.action_repeat)
    capacity = config.num_episodes * num_steps

    def init(key: jax.Array) -> PETSState:
        k_model, k_run = jax.random.split(key)
        return PETSState(
            model=model.init(k_model),
            buffer=replay.init(capacity, acting.empty_transition(obs_size, action_size)),
            key=k_run,
            episode=jnp.zeros((), jnp.int32),
            env_steps=jnp.zeros((), jnp.int32),
        )

    env_step = functools.partial(acting.episode_step, env)

    plan = functools.partial(mpc_plan, objective_for, planner)

    def learning_episode(state: PETSState, fit: bool = True) -> tuple[PETSState, EpisodeMetrics]:
        key, k_fit, k_reset, k_plan_init, k_episode = jax.random.split(state.key, 5)
        model_state = state.model
        fit_metrics = FitMetrics.none()
        if fit:
            model_state, fit_info = model.fit(model_state, state.buffer, k_fit)
            fit_metrics = FitMetrics.of(fit_info)

        def plan_and_act(carry: PlanCarry, k: jax.Array):
            actions, planner_state, info = plan(
                model_state, carry.planner_state, carry.episode.state.obs, k
            )
            episode, steps = jax.lax.scan(env_step, carry.episode, actions[:steps_per_plan])
            planner_state = planner.shift(planner_state, steps_per_plan)
            return PlanCarry(episode, planner_state), (steps, info["best_return"])

        carry = PlanCarry(acting.start_episode(env, k_reset),
                          planner.init(action_size, k_plan_init))
        carry, (steps, planned) = jax.lax.scan(
            plan_and_act, carry, jax.random.split(k_episode, num_plans)
        )
        state = state.replace(model=model_state)
        return finish_episode(layout, state, key, carry.episode, steps, fit_metrics,
                              planned.mean())

    return PETS(
        config=config, env=env, model=model, planner=planner, num_steps=num_steps, init=init,
        seed_episode=functools.partial(seed_episode, env, layout),
        learning_episode=learning_episode, plan=plan,
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
        on_nonfinite=config.on_nonfinite,
    )


def make_train(config: Config) -> Callable[[jax.Array], tuple[PETSState, EpisodeMetrics]]:
    """A pure `train(key) -> (final_state, metrics)`; metrics leaves are [num_episodes].

    `jax.jit(jax.vmap(make_train(config)))(keys)` runs a seed sweep as one program. The host
    driver (`mbjax.agents.pets.train`) runs the same episode functions one at a time.
    """
    return make_pure_train(make_program(config))
