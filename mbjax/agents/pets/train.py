"""The PETS loop as pure functions: one compiled episode, `make_train(config) -> train(key)`.

Loop (the lecture notes' model-based RL v0.5 / v1.0 / v1.5):
  `num_seed_episodes` episodes with uniform random actions, then per episode:
  refit the ensemble on all data (v1.0 / v1.5; v0.5 fits once), run one episode planning with the
  model, add its transitions to the buffer.

Every episode steps `num_envs` B envs together (leaves with a leading [B]; B=1 by default). A
learning episode is a `lax.while_loop` over plans that stops once every env's episode has ended
(under `vmap`, e.g. a seed sweep, it runs until every seed's envs are done), with an inner scan
over the `steps_per_plan` actions executed from each plan (so replanning every N steps costs no
`lax.cond`). Env steps are `mbjax.acting.episode_step`s: steps after an env's episode ended are
masked (not stored, no reward). The buffer receives the episode env-major: env 0's valid
transitions in time order, then env 1's, and so on.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from mbjax import acting, grid, replay
from mbjax import envs as mbjax_envs
from mbjax.agents.pets.config import Config
from mbjax.agents.pets.prior import PolicyPrior, with_policy_prior
from mbjax.agents.pets.value import make_critic, train_critic
from mbjax.agents.program import Program, Segment, make_pure_train
from mbjax.models import FitMetrics, all_finite, learner_model
from mbjax.planners import make_planner
from mbjax.rollout import make_model_objective, make_model_problem


@struct.dataclass
class PETSState:
    """Everything a PETS run needs to continue, as one pytree (what checkpoints hold).

    model: ensemble params, normalizer, optimizer state, elites; buffer: all real transitions;
    key: the run's PRNG key; episode / env_steps: counters (int32 scalars).
    planner_hparams: the planner's numeric hyperparameters (float32 leaves; None for planners
    without any), from which every episode's planner warm start is built: a hyperparameter grid
    (`mbjax.grid`) sets them per run without recompiling.
    critic: with `config.terminal_value`, the SAC learner whose value ends every plan (None
    otherwise).
    """

    model: Any  # the model's state (an ensemble's ModelState by default)
    buffer: replay.ReplayBuffer
    key: jax.Array
    episode: jax.Array
    env_steps: jax.Array
    planner_hparams: Any = None
    critic: Any = None  # the terminal value's SAC learner state (config.terminal_value)


class EpisodeMetrics(NamedTuple):
    """Per-episode values (stacked over episodes by `make_train`); [] unless noted.

    episode_return / episode_length: means over the B envs; episode_return_per_env: [B].
    env_steps: all envs' env steps so far. planned_return: the mean of the planner's best
    predicted return over the plans made while the env was alive (all envs; NaN for seed
    episodes, which do not plan). value_loss: the terminal value critic's mean loss over the
    episode's updates (NaN without a terminal value and for seed episodes).
    """

    env_steps: jax.Array
    episode_return: jax.Array
    episode_length: jax.Array
    model_train_mse: jax.Array
    model_holdout_mse: jax.Array
    nonfinite: jax.Array
    planned_return: jax.Array
    episode_return_per_env: jax.Array
    value_loss: jax.Array


class PETS(NamedTuple):
    """Function bundle built from a Config (all pure; jit where you call them).

    init(key) -> PETSState
    seed_episode(state) -> (state, EpisodeMetrics)          uniform random actions
    learning_episode(state, fit: bool) -> (state, EpisodeMetrics)   refit (if fit) then MPC
    plan(model_state, planner_state, obs, key, value_params=None) -> (actions [H, A],
        planner_state, info); value_params: the critic state with `config.terminal_value`
    critic: the terminal value's SAC learner bundle (None without a terminal value)
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
    critic: Any = None


class PlanCarry(NamedTuple):
    """The carry of one env's loop over the plans of a learning episode."""

    plan: jax.Array  # [] int32: index of the next plan
    episode: acting.Episode
    planner_state: Any
    steps: acting.EpisodeStep  # leaves [num_plans, steps_per_plan]; steps not taken: invalid
    planned: jax.Array  # [num_plans]: each plan's best predicted return
    made: jax.Array  # [num_plans] bool: the plan was made while the episode was alive


class EpisodeLayout(NamedTuple):
    """How an episode's agent steps split into plans (static ints)."""

    num_steps: int  # agent steps per episode
    steps_per_plan: int  # actions executed from each plan
    num_plans: int  # ceil(num_steps / steps_per_plan); the last plan may run past the end
    action_repeat: int  # env steps per agent step
    num_envs: int  # envs stepped together (B)


def env_keys(key: jax.Array, num_envs: int) -> jax.Array:
    """Per-env keys [B, ...] from one key. A single env gets `key` itself, so num_envs=1 draws
    exactly the numbers of a single-env run."""
    return key[None] if num_envs == 1 else jax.random.split(key, num_envs)


def over_envs(fn: Callable[..., Any], num_envs: int,
              in_axes: tuple[int | None, ...] | int = 0) -> Callable[..., Any]:
    """`jax.vmap(fn, in_axes)` over the B envs (mapped arguments and all outputs lead with [B]).

    With one env it calls `fn` itself on the arguments without their [1] axis and adds it back
    to the outputs: XLA compiles a size-1 vmap to slightly different floating point, and
    num_envs=1 must reproduce single-env runs bit for bit.
    """
    if num_envs > 1:
        return jax.vmap(fn, in_axes=in_axes)

    def single(*args: Any) -> Any:
        axes = in_axes if isinstance(in_axes, tuple) else (in_axes,) * len(args)
        args = tuple(a if ax is None else jax.tree_util.tree_map(lambda x: x[0], a)
                     for a, ax in zip(args, axes, strict=True))
        return jax.tree_util.tree_map(lambda x: x[None], fn(*args))

    return single


def finish_episode(layout: EpisodeLayout, state: PETSState, key: jax.Array,
                   episode: acting.Episode, steps: acting.EpisodeStep, fit: FitMetrics,
                   planned: jax.Array,
                   value_loss: jax.Array | None = None) -> tuple[PETSState, EpisodeMetrics]:
    """Stores the B episodes' valid transitions, env after env, each in time order (episode:
    leaves [B]; steps: leaves [B, num_plans, steps_per_plan]; planned: []).

    `nonfinite` is the fit's (a NaN/Inf loss) or a NaN/Inf in the buffer (the env returned one:
    the buffer was finite before, since a non-finite episode is rolled back or stops the run).
    """
    def env_major(x: jax.Array) -> jax.Array:  # [B, P, S, ...] -> [B * num_steps, ...]
        per_env = x.reshape((layout.num_envs, -1) + x.shape[3:])[:, :layout.num_steps]
        return per_env.reshape((-1,) + x.shape[3:])  # the last plan's steps past the end: gone

    flat = jax.tree_util.tree_map(env_major, steps)
    buffer = replay.add_masked(state.buffer, flat.transition, flat.valid)
    new_state = state.replace(
        buffer=buffer, key=key, episode=state.episode + 1,
        env_steps=state.env_steps
        + jnp.sum(flat.valid, dtype=jnp.int32) * layout.action_repeat,
    )
    metrics = EpisodeMetrics(
        env_steps=new_state.env_steps, episode_return=jnp.mean(episode.episode_return),
        episode_length=jnp.mean(episode.length), model_train_mse=fit.train_loss,
        model_holdout_mse=fit.holdout_loss, nonfinite=fit.nonfinite | ~all_finite(buffer.data),
        planned_return=planned, episode_return_per_env=episode.episode_return,
        value_loss=jnp.full((), jnp.nan) if value_loss is None else value_loss,
    )
    return new_state, metrics


def random_episode(env: Any, layout: EpisodeLayout, k_reset: jax.Array,
                   k_act: jax.Array) -> tuple[acting.Episode, acting.EpisodeStep]:
    """One env's episode of uniform random actions: (Episode, steps [num_plans, steps_per_plan])."""
    actions = acting.random_actions(
        k_act, (layout.num_plans, layout.steps_per_plan, env.action_size)
    )
    env_step = functools.partial(acting.episode_step, env)
    return jax.lax.scan(
        lambda ep, chunk: jax.lax.scan(env_step, ep, chunk),
        acting.start_episode(env, k_reset), actions,
    )


def seed_episode(env: Any, layout: EpisodeLayout,
                 state: PETSState) -> tuple[PETSState, EpisodeMetrics]:
    """One episode of the B envs with uniform random actions into the buffer (no fit, no
    planning)."""
    key, k_reset, k_act = jax.random.split(state.key, 3)
    episode, steps = over_envs(functools.partial(random_episode, env, layout), layout.num_envs)(
        env_keys(k_reset, layout.num_envs), env_keys(k_act, layout.num_envs)
    )
    return finish_episode(layout, state, key, episode, steps, FitMetrics.none(),
                          jnp.full((), jnp.nan))


def mpc_plan(objective_for: Callable[..., Any], planner: Any, model_state: Any,
             planner_state: Any, obs: jax.Array, key: jax.Array,
             value_params: Any = None, *,
             prior: PolicyPrior | None = None) -> tuple[jax.Array, Any, dict]:
    """One MPC decision: the action sequence [H, A] planned from `obs` [obs_size] under the model.

    objective_for: `make_model_objective`'s function (or `make_model_problem`'s, for planners
    that need the dynamics); value_params: the terminal value's parameters (None: no terminal
    value); prior: the terminal value's policy prior (`prior.with_policy_prior`), or None;
    returns (actions, planner_state, info).
    """
    k_obj, k_plan = jax.random.split(key)
    if value_params is None:
        objective = objective_for(model_state, obs, k_obj)
    else:
        objective = objective_for(model_state, obs, k_obj, value_params)
    actions, planner_state, info = planner.plan(planner_state, objective, obs, k_plan)
    if prior is None or value_params is None:
        return actions, planner_state, info
    return with_policy_prior(prior, objective, model_state, value_params, obs,
                             jax.random.fold_in(k_plan, 1), actions, planner_state, info)


def one_member_problem(model: Any, problem_for: Callable[..., Any], elites_only: bool,
                       reward_fn: Any, model_state: Any, obs: jax.Array, key: jax.Array) -> Any:
    """`make_model_problem`'s problem with `step` (and a learned reward) through ONE member,
    drawn from `key` among the members used (all, or the elites): iLQR on a sampled model."""
    problem = problem_for(model_state, obs, key)
    pool = model.elites(model_state) if elites_only else jnp.arange(model.num_members)
    member = pool[jax.random.randint(jax.random.fold_in(key, 1), (), 0, pool.shape[0])]

    def member_step(x: jax.Array, action: jax.Array) -> Any:
        return model.step(model_state, x[None, None], action[None, None], None, member[None])

    def reward(x: jax.Array, action: jax.Array, next_x: jax.Array) -> jax.Array:
        if reward_fn is not None:
            return reward_fn(x, action, next_x)
        return member_step(x, action).reward[0, 0]

    return problem._replace(step=lambda x, a: member_step(x, a).next_obs[0, 0], reward=reward)


def plan_episode(env: Any, planner: Any, plan: Callable[..., tuple[jax.Array, Any, dict]],
                 layout: EpisodeLayout, model_state: Any, planner_hparams: Any,
                 value_params: Any, k_reset: jax.Array, k_plan_init: jax.Array,
                 k_episode: jax.Array) -> PlanCarry:
    """One env's MPC episode under `model_state`, planning with `planner_hparams` (and the
    terminal value `value_params`, or None): the final `PlanCarry`.

    A `lax.while_loop` over plans that stops once the episode has ended (or all plans are made),
    so a terminated episode costs no further plans. Under `vmap` (the B envs, seed sweeps) it
    runs until every env's episode is done, finished ones held by the loop's select. Shapes stay
    static: steps and plan outputs are preallocated [num_plans, ...], written at the plan index.
    """
    steps_per_plan = layout.steps_per_plan
    act = functools.partial(jax.lax.scan, functools.partial(acting.episode_step, env))
    plan_keys = jax.random.split(k_episode, layout.num_plans)

    def body(c: PlanCarry) -> PlanCarry:
        actions, planner_state, info = plan(
            model_state, c.planner_state, c.episode.state.obs, plan_keys[c.plan], value_params
        )
        episode, steps = act(c.episode, actions[:steps_per_plan])

        def put(every: jax.Array, new: jax.Array) -> jax.Array:
            return jax.lax.dynamic_update_index_in_dim(every, new, c.plan, 0)

        return PlanCarry(
            c.plan + 1, episode, planner.shift(planner_state, steps_per_plan),
            jax.tree_util.tree_map(put, c.steps, steps), put(c.planned, info["best_return"]),
            put(c.made, c.episode.alive > 0),
        )

    def cond(c: PlanCarry) -> jax.Array:
        return (c.plan < layout.num_plans) & (c.episode.alive > 0)

    episode = acting.start_episode(env, k_reset)
    # Zeros are invalid steps: plans never made leave nothing for `add_masked` to store.
    no_actions = jnp.zeros((steps_per_plan, env.action_size))
    steps = jax.tree_util.tree_map(
        lambda x: jnp.zeros((layout.num_plans,) + x.shape, x.dtype),
        jax.eval_shape(act, episode, no_actions)[1],
    )
    no_plans = jnp.zeros((layout.num_plans,))
    planner_state = planner.init(env.action_size, k_plan_init, planner_hparams)
    carry = PlanCarry(jnp.zeros((), jnp.int32), episode, planner_state, steps, no_plans,
                      no_plans > 0)
    return jax.lax.while_loop(cond, body, carry)


def learning_episode(env: Any, model: Any, planner: Any,
                     plan: Callable[..., tuple[jax.Array, Any, dict]], layout: EpisodeLayout,
                     train_value: Callable[..., Any] | None, state: PETSState,
                     fit: bool = True) -> tuple[PETSState, EpisodeMetrics]:
    """Refit the model on the buffer (if `fit`, a static choice), train the terminal value's
    critic (`train_value(critic, buffer, model_state, key) -> (critic, loss)`, None without
    one), then one MPC episode of the B envs (each its own reset and planner warm start) into
    the buffer.

    planned_return: the mean best predicted return over the plans made while an env was alive
    (a plan after the episode's end is not made).
    """
    key, k_fit, k_reset, k_plan_init, k_episode = jax.random.split(state.key, 5)
    model_state = state.model
    fit_metrics = FitMetrics.none()
    if fit:
        model_state, fit_info = model.fit(model_state, state.buffer, k_fit)
        fit_metrics = FitMetrics.of(fit_info)
    critic, value_loss = state.critic, None
    if train_value is not None:  # its own key: runs without a terminal value keep their numbers
        critic, value_loss = train_value(critic, state.buffer, model_state,
                                         jax.random.fold_in(k_fit, 1))
    one_env = functools.partial(plan_episode, env, planner, plan, layout)
    done = over_envs(one_env, layout.num_envs, (None, None, None, 0, 0, 0))(
        model_state, state.planner_hparams, critic,
        *(env_keys(k, layout.num_envs) for k in (k_reset, k_plan_init, k_episode)),
    )
    # The mean over the plans made, as the mean over all plans rescaled: where every plan was
    # made (no early end) this is bit for bit the plain mean (`mean(where=)` rounds differently).
    made = jnp.sum(done.made, dtype=jnp.float32)
    planned = jnp.mean(jnp.where(done.made, done.planned, 0.0)) * (done.made.size / made)
    state = state.replace(model=model_state, critic=critic)
    return finish_episode(layout, state, key, done.episode, done.steps, fit_metrics, planned,
                          value_loss)


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
    critic = make_critic(config, obs_size, action_size)  # None without a terminal value
    reward_fn, termination_fn = mbjax_envs.resolve_task(
        config.env, config.learned_reward, config.learned_termination,
        config.use_estimated_reward,
    )
    # Planners that use the dynamics (iLQR: `needs_dynamics`) get a PlanningProblem (objective
    # plus the members' mean step and the reward); the others keep the bare objective.
    if getattr(config.planner_config, "needs_dynamics", False):
        objective_for = make_model_problem(model, config.propagation, reward_fn, termination_fn)
        if getattr(config.planner_config, "model_dynamics", "mean") == "member":  # iLQR default
            objective_for = functools.partial(one_member_problem, model, objective_for,
                                              config.propagation.elites_only, reward_fn)
    else:
        objective_for = make_model_objective(
            model, config.propagation, reward_fn, termination_fn,
            terminal_value=None if critic is None else critic.value)
    steps_per_plan = min(config.steps_per_plan, num_steps)
    num_plans = math.ceil(num_steps / steps_per_plan)
    layout = EpisodeLayout(num_steps, steps_per_plan, num_plans, config.action_repeat,
                           config.num_envs)
    capacity = config.num_episodes * num_steps * config.num_envs
    train_value = None if critic is None else functools.partial(
        train_critic, critic, model, config.value, reward_fn, termination_fn)

    def init(key: jax.Array) -> PETSState:
        k_model, k_run = jax.random.split(key)
        return PETSState(
            model=model.init(k_model),
            buffer=replay.init(capacity, acting.empty_transition(obs_size, action_size)),
            key=k_run,
            episode=jnp.zeros((), jnp.int32),
            env_steps=jnp.zeros((), jnp.int32),
            # The config's values (the key is unused by every planner's hparams).
            planner_hparams=planner.init(action_size, k_run).hparams,
            critic=None if critic is None else critic.init(jax.random.fold_in(key, 1)),
        )

    prior = None
    if critic is not None and config.value.policy_prior > 0:
        prior = PolicyPrior(critic, model, config.horizon, config.value.policy_prior, reward_fn,
                            termination_fn, config.propagation.elites_only)
    plan = functools.partial(mpc_plan, objective_for, planner, prior=prior)

    return PETS(
        config=config, env=env, model=model, planner=planner, num_steps=num_steps, init=init,
        seed_episode=functools.partial(seed_episode, env, layout),
        learning_episode=functools.partial(learning_episode, env, model, planner, plan, layout,
                                           train_value),
        plan=plan, critic=critic,
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
            # A mean over envs need not be whole; one env's length stays an int.
            "episode_length": (int if config.num_envs == 1 else float)(m.episode_length),
            "model_train_mse": num(m.model_train_mse),
            "model_holdout_mse": num(m.model_holdout_mse),
            "planned_return": num(m.planned_return),
            "episode_return_per_env": [float(x) for x in np.asarray(m.episode_return_per_env)],
            **({"value_loss": num(m.value_loss)} if config.terminal_value else {}),
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


def grid_leaves(config: Config) -> dict[str, grid.Setter]:
    """The config fields a hyperparameter grid may vary (`Algorithm.grid_leaves`): the planner's
    numeric hyperparameters (`PETSState.planner_hparams`) and the ensemble's learning rate."""
    planner = make_planner(config.planner, config.planner_config)

    def set_hparams(state: PETSState, values: dict[str, jax.Array]) -> PETSState:
        return state.replace(planner_hparams=state.planner_hparams.replace(**values))

    return {**grid.planner_leaves(planner, config.planner_config, "planner_config.", set_hparams),
            **grid.model_leaves()}


def make_train(config: Config) -> Callable[[jax.Array], tuple[PETSState, EpisodeMetrics]]:
    """A pure `train(key) -> (final_state, metrics)`; metrics leaves are [num_episodes].

    `jax.jit(jax.vmap(make_train(config)))(keys)` runs a seed sweep as one program. The host
    driver (`mbjax.agents.pets.train`) runs the same episode functions one at a time.
    """
    return make_pure_train(make_program(config))
