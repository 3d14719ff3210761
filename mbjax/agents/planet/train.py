"""The PlaNet loop as pure functions (Hafner et al. 2019, "Learning Latent Dynamics for Planning
from Pixels", Algorithm 1): seed episodes with random actions, then per episode fit the RSSM
(`model.fit_steps` updates: PlaNet's collect interval) and collect one episode with MPC in the
RSSM's latent space, exploration noise on the executed actions.

The agent keeps the filter (the RSSM's posterior): before each decision it folds the previous
action and the new observation in with `filter_step`, then plans from `feature(latent)`. Planning
reuses `mbjax.rollout.make_model_objective` with the RSSM as the protocol model (its `step` is
the prior transition, its reward head the reward) and any planner of `mbjax.planners`: no
planner code here. A learning episode is a `lax.while_loop` over agent steps that stops once the
episode has ended (under `vmap`, once every run's has).
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
from mbjax.agents.planet.config import Config
from mbjax.agents.program import Program, Segment, make_pure_train
from mbjax.models import all_finite
from mbjax.models.rssm import Latent, RSSMModel, make_rssm, set_learning_rate
from mbjax.planners import make_planner
from mbjax.rollout import make_model_objective, make_model_problem


@struct.dataclass
class PlaNetState:
    """Everything a PlaNet run needs to continue, as one pytree (what checkpoints hold).

    model: the RSSM's params and optimizer state (learning rate a leaf); buffer: all real
    transitions, one stream of consecutive steps (obs stored uint8 for pixels); key: the run's
    PRNG key; episode / env_steps: int32 counters. planner_hparams: the planner's numeric
    hyperparameters from which every episode's planner warm start is built; exploration_noise:
    [] float32 std of the collection noise (both grid leaves).
    """

    model: Any
    buffer: replay.ReplayBuffer
    key: jax.Array
    episode: jax.Array
    env_steps: jax.Array
    planner_hparams: Any
    exploration_noise: jax.Array


class EpisodeMetrics(NamedTuple):
    """Per-episode scalars. model_*: the RSSM fit before the episode (NaN in seed episodes):
    the mean total loss over its steps, the holdout loss after it, and the mean reconstruction,
    reward and KL(post || prior) terms. planned_return: mean over the episode's decisions of
    the planner's best predicted return (NaN in seed episodes)."""

    env_steps: jax.Array
    episode_return: jax.Array
    episode_length: jax.Array
    model_loss: jax.Array
    model_holdout_loss: jax.Array
    model_rec_loss: jax.Array
    model_rew_loss: jax.Array
    model_kl: jax.Array
    nonfinite: jax.Array
    planned_return: jax.Array


class AgentCarry(NamedTuple):
    """What the acting agent carries between env steps.

    latent: the filtered RSSM latent (Latent of [D], [Z]); action: [A] the last executed action
    (it leads to the next observation); is_first: [] 1.0 before the episode's first observation
    (the filter then starts from zeros); planner_state: the planner's warm start.
    """

    latent: Latent
    action: jax.Array
    is_first: jax.Array
    planner_state: Any


class PlaNet(NamedTuple):
    """Function bundle built from a Config (all pure; jit where you call them).

    init(key) -> PlaNetState
    start(key, planner_hparams) -> AgentCarry          a new episode's agent
    act(model_state, carry, obs, key, noise_std) -> (carry, action [A], info)   filter + plan
    objective_for(model_state, x [S], key) -> objective(actions [N, H, A]) -> [N]: the latent
        objective (`make_model_objective` over the RSSM; a PlanningProblem for iLQR-type)
    seed_episode(state) -> (state, EpisodeMetrics)     uniform random actions
    learning_episode(state) -> (state, EpisodeMetrics) fit, then one MPC episode
    """

    config: Config
    env: Any
    model: RSSMModel
    planner: Any
    num_steps: int
    init: Callable[[jax.Array], PlaNetState]
    start: Callable[..., AgentCarry]
    act: Callable[..., tuple[AgentCarry, jax.Array, dict]]
    objective_for: Callable[..., Any]
    seed_episode: Callable[[PlaNetState], tuple[PlaNetState, EpisodeMetrics]]
    learning_episode: Callable[[PlaNetState], tuple[PlaNetState, EpisodeMetrics]]


class StepCarry(NamedTuple):
    """The carry of a learning episode's loop over agent steps."""

    t: jax.Array  # [] int32: the next step's index
    episode: acting.Episode
    agent: AgentCarry
    steps: acting.EpisodeStep  # leaves [num_steps, ...]; steps not taken: invalid (zeros)
    planned: jax.Array  # [num_steps]: each decision's best predicted return


def make_env(config: Config) -> Any:
    """The env a run of `config` acts in (pixels: `PixelWrapper` with the config's sizes)."""
    extra = dict(pixels=True, frame_stack=config.frame_stack,
                 image_size=config.image_size) if config.pixels else {}
    return mbjax_envs.make(config.env, episode_length=config.episode_length,
                           action_repeat=config.action_repeat, **extra)


def never_terminates(obs: jax.Array, action: jax.Array, next_obs: jax.Array) -> jax.Array:
    """A termination_fn that is always 0 (the RSSM's continue head is not used to plan)."""
    del obs, action
    return jnp.zeros((), next_obs.dtype)


def make_act(model: RSSMModel, planner: Any, objective_for: Callable[..., Any]):
    """act(model_state, carry, obs, key, noise_std) -> (carry, action [A], info).

    obs: one observation [*obs_shape] (the one the last action led to; at is_first the reset's).
    Filters it into the latent (a posterior sample, as PlaNet acts), plans [H, A] from
    feature(latent) under the RSSM prior, executes the first action plus N(0, noise_std^2)
    noise clipped to [-1, 1], and shifts the warm start by one step.
    """

    def act(model_state: Any, carry: AgentCarry, obs: jax.Array, key: jax.Array,
            noise_std: jax.Array) -> tuple[AgentCarry, jax.Array, dict]:
        k_filter, k_obj, k_plan, k_noise = jax.random.split(key, 4)
        latent, _, _ = model.fns.filter_step(model_state.params, carry.latent, carry.action,
                                             obs, carry.is_first, k_filter)
        x = model.feature(latent)
        objective = objective_for(model_state, x, k_obj)
        actions, planner_state, info = planner.plan(carry.planner_state, objective, x, k_plan)
        noise = noise_std * jax.random.normal(k_noise, actions[0].shape, actions.dtype)
        action = jnp.clip(actions[0] + noise, -1.0, 1.0)
        carry = AgentCarry(latent, action, jnp.zeros_like(carry.is_first),
                           planner.shift(planner_state, 1))
        return carry, action, info

    return act


def finish_episode(state: PlaNetState, key: jax.Array, episode: acting.Episode,
                   steps: acting.EpisodeStep, fit: dict | None, planned: jax.Array,
                   action_repeat: int) -> tuple[PlaNetState, EpisodeMetrics]:
    """Stores the episode's valid transitions (steps: leaves [num_steps]) in time order."""
    buffer = replay.add_masked(state.buffer, steps.transition, steps.valid)
    env_steps = state.env_steps + jnp.sum(steps.valid, dtype=jnp.int32) * action_repeat
    new_state = state.replace(buffer=buffer, key=key, episode=state.episode + 1,
                              env_steps=env_steps)
    nan = jnp.full((), jnp.nan, jnp.float32)
    fit = fit or {}
    metrics = EpisodeMetrics(
        env_steps=env_steps, episode_return=episode.episode_return,
        episode_length=episode.length, model_loss=fit.get("train_loss", nan),
        model_holdout_loss=fit.get("holdout_loss", nan),
        model_rec_loss=fit.get("rec_loss", nan), model_rew_loss=fit.get("rew_loss", nan),
        model_kl=fit.get("kl_loss", nan),
        nonfinite=fit.get("nonfinite", jnp.zeros((), bool)) | ~all_finite(buffer.data),
        planned_return=planned,
    )
    return new_state, metrics


def seed_episode(env: Any, num_steps: int, action_repeat: int,
                 state: PlaNetState) -> tuple[PlaNetState, EpisodeMetrics]:
    """One episode of uniform random actions into the buffer (no fit, no planning)."""
    key, k_reset, k_act = jax.random.split(state.key, 3)
    episode, steps = acting.random_episode(env, k_reset, k_act, num_steps)
    return finish_episode(state, key, episode, steps, None, jnp.full((), jnp.nan),
                          action_repeat)


def mpc_episode(env: Any, planet_start: Callable[..., AgentCarry], act: Callable[..., Any],
                num_steps: int, model_state: Any, state: PlaNetState, k_reset: jax.Array,
                k_start: jax.Array, k_episode: jax.Array) -> StepCarry:
    """One episode of MPC in latent space with exploration noise: the final StepCarry.

    A `lax.while_loop` over agent steps that stops once the episode has ended; shapes stay
    static (steps preallocated [num_steps, ...], written at the step index).
    """
    step_keys = jax.random.split(k_episode, num_steps)

    def body(c: StepCarry) -> StepCarry:
        agent, action, info = act(model_state, c.agent, c.episode.state.obs, step_keys[c.t],
                                  state.exploration_noise)
        episode, step = acting.episode_step(env, c.episode, action)

        def put(every: jax.Array, new: jax.Array) -> jax.Array:
            return jax.lax.dynamic_update_index_in_dim(every, new, c.t, 0)

        return StepCarry(c.t + 1, episode, agent, jax.tree_util.tree_map(put, c.steps, step),
                         put(c.planned, info["best_return"]))

    def cond(c: StepCarry) -> jax.Array:
        return (c.t < num_steps) & (c.episode.alive > 0)

    episode = acting.start_episode(env, k_reset)
    one_step = jax.eval_shape(functools.partial(acting.episode_step, env), episode,
                              jnp.zeros((env.action_size,)))[1]
    steps = jax.tree_util.tree_map(lambda x: jnp.zeros((num_steps,) + x.shape, x.dtype),
                                   one_step)
    carry = StepCarry(jnp.zeros((), jnp.int32), episode,
                      planet_start(k_start, state.planner_hparams), steps,
                      jnp.zeros((num_steps,)))
    return jax.lax.while_loop(cond, body, carry)


def learning_episode(model: RSSMModel, collect: Callable[..., StepCarry], action_repeat: int,
                     state: PlaNetState) -> tuple[PlaNetState, EpisodeMetrics]:
    """Fit the RSSM on the buffer (`fit_steps` updates), then one MPC episode into the buffer.

    planned_return: the mean of the planner's best predicted return over the decisions made.
    """
    key, k_fit, k_reset, k_start, k_episode = jax.random.split(state.key, 5)
    model_state, fit = model.fit(state.model, state.buffer, k_fit)
    state = state.replace(model=model_state)
    done = collect(model_state, state, k_reset, k_start, k_episode)
    made = jnp.arange(done.planned.shape[0]) < done.t
    planned = jnp.sum(jnp.where(made, done.planned, 0.0)) / jnp.maximum(done.t, 1)
    return finish_episode(state, key, done.episode, done.steps, fit, planned, action_repeat)


def make_planet(config: Config) -> PlaNet:
    """Builds the env, the RSSM, the planner, the latent objective and the episode functions."""
    env = make_env(config)
    action_size = env.action_size  # a discrete-action env refuses here, in one line
    num_steps = math.ceil(env.episode_length / config.action_repeat)  # agent steps
    if config.model.seq_len > num_steps:
        raise ValueError(
            f"Config.model.seq_len={config.model.seq_len} is invalid; allowed: at most the "
            f"{num_steps} agent steps of an episode (sequences never cross an episode's end)")
    obs_shape = env.observation_size
    model = make_rssm(config.model, obs_shape, action_size)
    planner = make_planner(config.planner, config.planner_config)
    termination_fn = None if config.learned_termination else never_terminates
    # The latent objective: `propagate` over the RSSM (x = feature(latent), `step` = the prior
    # plus the reward head). Planners that use the dynamics (iLQR) get the PlanningProblem.
    if getattr(config.planner_config, "needs_dynamics", False):
        objective_for = make_model_problem(model, config.propagation, None, termination_fn)
    else:
        objective_for = make_model_objective(model, config.propagation, None, termination_fn)
    act = make_act(model, planner, objective_for)
    capacity = config.num_episodes * num_steps
    example = acting.empty_transition(
        obs_shape, action_size, obs_dtype=getattr(env, "observation_dtype", jnp.float32))

    def start(key: jax.Array, planner_hparams: Any) -> AgentCarry:
        return AgentCarry(model.initial(()), jnp.zeros((action_size,)), jnp.ones(()),
                          planner.init(action_size, key, planner_hparams))

    def init(key: jax.Array) -> PlaNetState:
        k_model, k_run = jax.random.split(key)
        return PlaNetState(
            model=model.init(k_model), buffer=replay.init(capacity, example), key=k_run,
            episode=jnp.zeros((), jnp.int32), env_steps=jnp.zeros((), jnp.int32),
            planner_hparams=planner.init(action_size, k_run).hparams,
            exploration_noise=grid.float_leaf(config.exploration_noise),
        )

    collect = functools.partial(mpc_episode, env, start, act, num_steps)
    return PlaNet(
        config=config, env=env, model=model, planner=planner, num_steps=num_steps, init=init,
        start=start, act=act, objective_for=objective_for,
        seed_episode=functools.partial(seed_episode, env, num_steps, config.action_repeat),
        learning_episode=functools.partial(learning_episode, model, collect,
                                           config.action_repeat),
    )


def episode_record(episode: int, m: EpisodeMetrics) -> dict[str, Any]:
    """The host-side record of one episode (NaN losses of seed episodes become None)."""
    def num(x: Any) -> float | None:
        v = float(np.asarray(x))
        return None if np.isnan(v) else v

    return {
        "episode": episode, "env_steps": int(m.env_steps),
        "episode_return": float(m.episode_return), "episode_length": int(m.episode_length),
        "model_loss": num(m.model_loss), "model_holdout_loss": num(m.model_holdout_loss),
        "model_rec_loss": num(m.model_rec_loss), "model_rew_loss": num(m.model_rew_loss),
        "model_kl": num(m.model_kl), "planned_return": num(m.planned_return),
    }


def make_program(config: Config, planet: PlaNet | None = None) -> Program:
    """The PlaNet run as a Program: seed episodes, then fit + MPC episodes."""
    planet = planet or make_planet(config)
    n_seed = config.num_seed_episodes
    return Program(
        init=planet.init,
        segments=(Segment(planet.seed_episode, n_seed),
                  Segment(planet.learning_episode, config.num_episodes - n_seed)),
        to_record=episode_record,
        on_nonfinite=config.on_nonfinite,
    )


def grid_leaves(config: Config) -> dict[str, grid.Setter]:
    """The config fields a hyperparameter grid may vary: the planner's numeric hyperparameters,
    the RSSM's learning rate and the exploration noise (all leaves of `PlaNetState`)."""
    planner = make_planner(config.planner, config.planner_config)

    def set_hparams(state: PlaNetState, values: dict[str, jax.Array]) -> PlaNetState:
        return state.replace(planner_hparams=state.planner_hparams.replace(**values))

    return {
        **grid.planner_leaves(planner, config.planner_config, "planner_config.", set_hparams),
        "model.learning_rate":
            lambda state, value: state.replace(model=set_learning_rate(state.model, value)),
        "exploration_noise": lambda state, value: state.replace(exploration_noise=value),
    }


def make_train(config: Config) -> Callable[[jax.Array], tuple[PlaNetState, EpisodeMetrics]]:
    """A pure `train(key) -> (final_state, metrics)`, metrics leaves [num_episodes];
    `jax.jit(jax.vmap(make_train(config)))(keys)` is a seed sweep in one program."""
    return make_pure_train(make_program(config))
