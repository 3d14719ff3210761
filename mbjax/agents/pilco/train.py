"""PILCO as one compiled program (Deisenroth & Rasmussen 2011).

One iteration = one episode: act in the env (uniformly random for the first `random_episodes`,
then the squashed policy), add the transitions to the buffer, refit the GP dynamics (PILCO
state deltas from [features, action]), then optimise the policy by Adam on the expected
long-term cost of the moment-matched prediction from the start distribution
(`propagation.predict_trajectory`; its gradient flows through every moment-matching step). All
of it is jitted; the horizon and the optimiser steps are `lax.scan`s.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from mbjax import acting, envs, replay
from mbjax.agents.pilco import policy as pol
from mbjax.agents.pilco.config import Config
from mbjax.agents.pilco.moments import saturate
from mbjax.agents.pilco.propagation import (
    TaskSpec,
    joint_features,
    obs_features,
    point_cost,
    predict_trajectory,
    state_delta,
)
from mbjax.agents.pilco.tasks import task_spec
from mbjax.agents.program import Program, Segment
from mbjax.models.gp import GPState, empty_state, fit_gp
from mbjax.models.gp.posterior import Posterior
from mbjax.precision import float32_state, float64_step


class Hyper(NamedTuple):
    """float32 [] leaves (grid axes)."""

    policy_learning_rate: jax.Array


class PilcoState(NamedTuple):
    """gp: the GP dynamics; policy: RBFParams or LinearParams; buffer: all transitions so far
    (capacity episodes x steps); hparams; key; episode int32 []."""

    gp: GPState
    policy: Any
    buffer: replay.ReplayBuffer
    hparams: Hyper
    key: jax.Array
    episode: jax.Array


class EpisodeMetrics(NamedTuple):
    """Per episode: env_steps (agent steps so far), episode_return, episode_cost (sum of the
    saturating cost along the real episode), predicted_cost (the optimised policy's expected
    long-term cost), gp_nll, gp_train_mse, nonfinite."""

    env_steps: jax.Array
    episode_return: jax.Array
    episode_cost: jax.Array
    predicted_cost: jax.Array
    gp_nll: jax.Array
    gp_train_mse: jax.Array
    nonfinite: jax.Array


def make_env(config: Config) -> Any:
    """The env of `config` (one-line ValueError for an env PILCO has no TaskSpec for)."""
    task_spec(config.env)
    return envs.make(config.env, episode_length=config.episode_length,
                     action_repeat=config.action_repeat)


def steps_per_episode(env: Any, config: Config) -> int:
    return -(-env.episode_length // config.action_repeat)


def start_distribution(spec: TaskSpec) -> tuple[jax.Array, jax.Array]:
    """(mean [D], cov [D, D]) of the start state z_0."""
    std = jnp.asarray(spec.init_std)  # the default float (float64 under `float64_step`)
    return jnp.asarray(spec.init_mean), jnp.diag(std**2)


def act(spec: TaskSpec, params: Any, obs: jax.Array) -> jax.Array:
    """The policy's action [A] in [-1, 1] at an observation."""
    return saturate(pol.evaluate(params, obs_features(spec, obs)))


def make_init(env: Any, config: Config):
    spec = task_spec(config.env)
    num_steps = steps_per_episode(env, config)
    a = env.action_size

    def init(key: jax.Array) -> PilcoState:
        key, k_policy = jax.random.split(key)
        m0, s0 = start_distribution(spec)
        # RBF centres around the mean start features [plain, sin, cos] with std centre_spread
        # per feature, lengthscales 1 (plain) and 0.7 (sin, cos): the toolbox's settings_cp.m.
        # Centres drawn from the (narrow) start distribution itself all sit at the start state
        # and the policy is ~constant over a swing-up: in our runs it never left the bottom.
        jm, _, idx = joint_features(spec, m0, s0)
        f, dp = spec.feature_size, len(spec.plain)
        ell = jnp.where(jnp.arange(f) < dp, 1.0, 0.7)
        params = pol.init_params(config.policy, f, a, config.num_basis, jm[idx],
                                 config.centre_spread**2 * jnp.eye(f), k_policy, ell)
        buffer = replay.init(config.episodes * num_steps,
                             acting.empty_transition(env.observation_size, a))
        gp = empty_state(spec.feature_size + a, spec.state_size, config.gp.max_points)
        hp = Hyper(jnp.asarray(config.policy_learning_rate, jnp.float32))
        return PilcoState(gp, params, buffer, hp, key, jnp.int32(0))

    return init


def collect(env: Any, config: Config, state: PilcoState, key: jax.Array):
    """One episode in the real env -> (buffer with its transitions, return, summed cost).
    Uniformly random actions while `state.episode < random_episodes`, else the policy's (a
    traced switch, so the whole run is one compiled step)."""
    spec = task_spec(config.env)
    k_reset, k_act = jax.random.split(key)

    def one(episode, k):
        random = jax.random.uniform(k, (env.action_size,), minval=-1.0, maxval=1.0)
        action = jnp.where(state.episode < config.random_episodes, random,
                           act(spec, state.policy, episode.state.obs))
        episode, step = acting.episode_step(env, episode, action)
        cost = point_cost(spec, step.transition.next_obs, config.cost_width) * step.valid
        return episode, (step, cost)

    keys = jax.random.split(k_act, steps_per_episode(env, config))
    episode, (steps, costs) = jax.lax.scan(one, acting.start_episode(env, k_reset), keys)
    buffer = replay.add_masked(state.buffer, steps.transition, steps.valid)
    return buffer, episode.episode_return, jnp.sum(costs)


def fit_dynamics(config: Config, state: PilcoState, buffer: replay.ReplayBuffer,
                 key: jax.Array) -> tuple[GPState, dict]:
    """The GP on PILCO's features: [plain, sin, cos, action] -> z' - z (angles wrapped)."""
    spec = task_spec(config.env)
    t = buffer.data
    x = jnp.concatenate([jax.vmap(lambda o: obs_features(spec, o))(t.obs), t.action], -1)
    y = jax.vmap(lambda o, n: state_delta(spec, o, n))(t.obs, t.next_obs)
    return fit_gp(config.gp, state.gp, x, y, replay.valid_mask(buffer), key)


def _keep_best(value: jax.Array, p: Any, best: Any, best_value: jax.Array):
    """(best, best_value) updated with the iterate p of loss `value` when it is finite and lower."""
    better = jnp.isfinite(value) & (value < best_value)
    best = jax.tree.map(lambda new, old: jnp.where(better, new, old), p, best)
    return best, jnp.where(better, value, best_value)


def _adam_step(loss, learning_rate: jax.Array):
    """One Adam step (global-norm clip 10; nonfinite gradients zeroed) as (init, step)."""
    opt = optax.chain(optax.clip_by_global_norm(10.0), optax.adam(learning_rate))

    def step(p, opt_state):
        value, grad = jax.value_and_grad(loss)(p)
        grad = jax.tree.map(lambda g: jnp.where(jnp.isfinite(value) & jnp.isfinite(g), g, 0.0),
                            grad)
        updates, opt_state = opt.update(grad, opt_state, p)
        return value, optax.apply_updates(p, updates), opt_state

    return opt.init, step


def optimise_policy(config: Config, gp: Posterior, params: Any,
                    learning_rate: jax.Array) -> tuple[Any, jax.Array]:
    """`policy_steps` Adam steps on the expected long-term cost, warm-started from `params` ->
    (best iterate, its cost). (The toolbox uses BFGS with line searches; optax's L-BFGS with
    its zoom line search did worse per second here, see `presets`.)"""
    spec = task_spec(config.env)
    m0, s0 = start_distribution(spec)
    width = jnp.asarray(config.cost_width)

    def loss(p):
        return jnp.sum(predict_trajectory(spec, gp, p, m0, s0, config.horizon, width).costs)

    init, step = _adam_step(loss, learning_rate)

    def one(carry, _):
        p, opt_state, best, best_value = carry
        value, p_next, opt_state = step(p, opt_state)
        best, best_value = _keep_best(value, p, best, best_value)
        return (p_next, opt_state, best, best_value), None

    start = (params, init(params), params, jnp.asarray(jnp.inf, jax.tree.leaves(params)[0].dtype))
    (last, _, best, best_value), _ = jax.lax.scan(one, start, None, length=config.policy_steps)
    return _keep_best(loss(last), last, best, best_value)


def make_episode(env: Any, config: Config):
    """One iteration: collect, refit the GP, optimise the policy -> (state, EpisodeMetrics);
    computed in float64 unless config.precision is "float32" (the state stays float32)."""

    def episode(state: PilcoState) -> tuple[PilcoState, EpisodeMetrics]:
        key, k_env, k_fit = jax.random.split(state.key, 3)
        buffer, ret, cost = collect(env, config, state, k_env)
        gp, info = fit_dynamics(config, state, buffer, k_fit)
        params, predicted = optimise_policy(config, gp.posterior, state.policy,
                                            state.hparams.policy_learning_rate)
        finite = jnp.all(jnp.asarray([jnp.all(jnp.isfinite(v)) for v in
                                      jax.tree.leaves((gp.posterior, params))]))
        state = state._replace(gp=gp, policy=params, buffer=buffer, key=key,
                               episode=state.episode + 1)
        metrics = EpisodeMetrics(
            env_steps=buffer.size, episode_return=ret, episode_cost=cost,
            predicted_cost=predicted, gp_nll=info["nll"], gp_train_mse=info["train_mse"],
            nonfinite=~finite | ~jnp.isfinite(predicted))
        return state, metrics

    return float64_step(episode) if config.precision == "float64" else episode


def episode_record(i: int, m: EpisodeMetrics) -> dict:
    return {"episode": i, "env_steps": int(m.env_steps), "episode_return": float(m.episode_return),
            "episode_cost": float(m.episode_cost), "predicted_cost": float(m.predicted_cost),
            "gp_nll": float(m.gp_nll), "gp_train_mse": float(m.gp_train_mse)}


def make_program(config: Config) -> Program:
    """`episodes` iterations (the first `random_episodes` acting at random); every iteration
    also refits the GP and optimises the policy. One segment: one compiled step."""
    env = make_env(config)
    return Program(float32_state(make_init(env, config)),
                   (Segment(make_episode(env, config), config.episodes),),
                   episode_record, config.on_nonfinite, x64=config.precision == "float64")


def make_policy(config: Config, final_state: PilcoState):
    """(init_carry, policy): the squashed deterministic policy of the run's last iteration."""
    spec = task_spec(config.env)
    params = jax.tree.map(jnp.asarray, final_state.policy)  # a checkpoint holds numpy arrays

    def policy(carry, obs, key):
        del key
        return carry, act(spec, params, jnp.asarray(obs, jnp.float32)), {}

    return (lambda key: ()), policy


def grid_leaves(config: Config) -> dict:
    """policy_learning_rate: `--grid.policy_learning_rate=0.01,0.05` in `experiments.sweep`."""
    del config

    def setter(state: PilcoState, value):
        return state._replace(hparams=state.hparams._replace(policy_learning_rate=value))

    return {"policy_learning_rate": setter}
