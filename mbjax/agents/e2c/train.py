"""E2C as one compiled Program (Watter et al. 2015, "Embed to Control").

One iteration (`make_iteration`), all inside one jitted step:

1. Random-action data added to the replay buffer of (x_t, u_t, x_{t+1}) triples (uint8
   images): with start_states="uniform" (the paper's) `random_episodes * T` triples from
   uniformly drawn physical states (`states.uniform_triples`); with "reset" `random_episodes`
   episodes from the env's reset (vmapped, masked after their end).
2. `fit_steps` clipped-Adam steps on the E2C loss (`model.e2c_loss`), each on `batch_size`
   uniformly sampled triples (one `lax.scan`).
3. On `eval_batch` held-out triples from uniformly drawn states (never added to the buffer):
   the latent linear prediction error (`model.prediction_error`) and `goal_correlation`, the
   Pearson correlation between |mu(x_t) - z_goal| (what the latent cost penalises) and the true
   distance of x_t's state to the goal (`states.goal_error`: the pendulum's |angle|).
4. One latent iLQR-MPC episode (`control.make_controller`) towards the goal image's encoding,
   N(0, exploration_noise^2) added to the executed actions (clipped to [-1, 1]); its
   transitions join the buffer (the paper trains on random data only; with start_states=
   "reset" the controller's own episodes are the only way a swing-up task sees upright images).
   Its return is the record's `episode_return`.

Shapes: T steps per episode, R random episodes, obs uint8 [H, W, C], A actions, n_z latent.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from mbjax import acting, envs, optim, replay
from mbjax.agents.e2c import control, states
from mbjax.agents.e2c import model as model_lib
from mbjax.agents.e2c.config import Config
from mbjax.agents.program import Program, Segment
from mbjax.envs.discrete import require_continuous
from mbjax.envs.registry import OWN_TASKS, check_name
from mbjax.models import all_finite


class Hyper(NamedTuple):
    """float32 [] leaves (grid axes)."""

    transition_kl_weight: jax.Array
    state_cost: jax.Array
    action_cost: jax.Array
    exploration_noise: jax.Array


class E2CState(NamedTuple):
    """params (flax), opt_state (clip + Adam, learning rate a leaf), buffer (Transitions, uint8
    obs), hparams, iteration [] int32, env_steps [] int32, key."""

    params: Any
    opt_state: Any
    buffer: replay.ReplayBuffer
    hparams: Hyper
    iteration: jax.Array
    env_steps: jax.Array
    key: jax.Array


class IterationMetrics(NamedTuple):
    env_steps: jax.Array
    episode_return: jax.Array  # the latent iLQR-MPC episode (with exploration noise)
    random_return: jax.Array  # random data: mean episode return ("reset"), T x mean reward
    loss: jax.Array  # mean E2C loss over the fit steps
    rec: jax.Array
    next_rec: jax.Array
    kl_prior: jax.Array
    kl_transition: jax.Array
    prediction_error: jax.Array  # latent linear prediction error / latent variance
    prediction_vs_persistence: jax.Array  # the same error / that of predicting z' = z
    goal_correlation: jax.Array  # corr(|mu(x) - z_goal|, true distance to the goal), held out
    goal_distance: jax.Array  # |mu(x_T) - z_goal| at the MPC episode's end
    nonfinite: jax.Array


class E2C(NamedTuple):
    """Everything built once from a Config: env, net, optimizer, controller, goal observation,
    episode length T."""

    config: Config
    env: Any
    net: model_lib.E2CNet
    optimizer: optax.GradientTransformation
    controller: control.Controller
    goal_obs: jax.Array
    num_steps: int


def make_env(config: Config) -> Any:
    """The pixel env of `config` (one-line ValueError for a discrete env or one without a
    renderer or known goal state)."""
    check_name(config.env)
    if config.env not in control.GOAL_STATES:
        if config.env in OWN_TASKS:  # cheap to build; discrete ones get their own error
            require_continuous(envs.make(config.env), config.env, "e2c")
        raise ValueError(f"env {config.env!r}: e2c needs a rendered goal image; supported envs: "
                         f"{', '.join(control.GOAL_STATES)}")
    return envs.make(config.env, episode_length=config.episode_length,
                     action_repeat=config.action_repeat, pixels=True,
                     frame_stack=config.frame_stack, image_size=config.image_size)


def make_optimizer(config: Config) -> optax.GradientTransformation:
    """Global-norm clipping then Adam; the learning rate a float32 leaf (inject_hyperparams)."""
    def chain(learning_rate):
        return optax.chain(optax.clip_by_global_norm(config.grad_clip),
                           optax.adam(learning_rate))
    return optax.inject_hyperparams(chain)(learning_rate=config.learning_rate)


def build(config: Config) -> E2C:
    env = make_env(config)
    net = model_lib.E2CNet(config, tuple(env.observation_size), env.action_size)
    return E2C(config, env, net, make_optimizer(config),
               control.make_controller(net, config.horizon, config.ilqr_iterations),
               control.goal_observation(env, config.env), int(env.episode_length))


def make_init(e2c: E2C) -> Callable[[jax.Array], E2CState]:
    c, env = e2c.config, e2c.env
    f32 = lambda v: jnp.asarray(v, jnp.float32)  # noqa: E731
    example = acting.empty_transition(env.observation_size, env.action_size,
                                      obs_dtype=env.observation_dtype)

    def init(key: jax.Array) -> E2CState:
        key, k_params = jax.random.split(key)
        params = e2c.net.init(k_params, e2c.goal_obs[None])
        return E2CState(
            params=params, opt_state=e2c.optimizer.init(params),
            buffer=replay.init(c.buffer_capacity, example),
            hparams=Hyper(f32(c.transition_kl_weight), f32(c.state_cost), f32(c.action_cost),
                          f32(c.exploration_noise)),
            iteration=jnp.int32(0), env_steps=jnp.int32(0), key=key)

    return init


def mpc_episode(e2c: E2C, state: E2CState, key: jax.Array) -> tuple[acting.Episode,
                                                                      acting.EpisodeStep]:
    """One latent iLQR-MPC episode with exploration noise: (final Episode, EpisodeStep [T])."""
    env, ctrl = e2c.env, e2c.controller
    hp = state.hparams
    costs = control.Costs(hp.state_cost, hp.action_cost)
    k_reset, k_plan, k_noise = jax.random.split(key, 3)
    z_goal = goal_latent(e2c, state.params)
    noise = jax.random.normal(k_noise, (e2c.num_steps, env.action_size))

    def body(carry, eps):
        ep, planner_state = carry
        u, planner_state, _ = ctrl.act(state.params, planner_state, ep.state.obs, z_goal, costs)
        u = jnp.clip(u + hp.exploration_noise * eps, -1.0, 1.0)
        ep, out = acting.episode_step(env, ep, u)
        return (ep, planner_state), out

    start = (acting.start_episode(env, k_reset), ctrl.planner.init(env.action_size, k_plan))
    (ep, _), steps = jax.lax.scan(body, start, noise)
    return ep, steps


def goal_latent(e2c: E2C, params: Any) -> jax.Array:
    """z_goal [n_z]: the encoder's mean of the goal image."""
    return e2c.net.apply(params, e2c.goal_obs, method=model_lib.E2CNet.encode).mean


def fit(e2c: E2C, state: E2CState, key: jax.Array) -> tuple[E2CState, model_lib.LossTerms]:
    """`fit_steps` Adam steps on sampled triples: (state, mean LossTerms over the steps)."""
    c, net = e2c.config, e2c.net
    grad_fn = jax.grad(model_lib.e2c_loss, argnums=1, has_aux=True)

    def body(carry, k):
        params, opt_state = carry
        k_batch, k_loss = jax.random.split(k)
        b = replay.sample(state.buffer, k_batch, c.batch_size)
        grads, terms = grad_fn(net, params, b.obs, b.action, b.next_obs,
                               state.hparams.transition_kl_weight, k_loss)
        updates, opt_state = e2c.optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), terms

    (params, opt_state), terms = jax.lax.scan(
        body, (state.params, state.opt_state), jax.random.split(key, c.fit_steps))
    return (state._replace(params=params, opt_state=opt_state),
            jax.tree_util.tree_map(jnp.mean, terms))


def random_data(e2c: E2C, key: jax.Array) -> tuple[acting.EpisodeStep, jax.Array, jax.Array]:
    """The iteration's random-action data (module docstring, 1): (steps [N] (transitions and
    valid), random_return [], env steps [] int32)."""
    c, env, T = e2c.config, e2c.env, e2c.num_steps
    if c.start_states == "uniform":
        n = c.random_episodes * T
        trans, _ = states.uniform_triples(env, c.env, key, n)
        return (acting.EpisodeStep(trans, jnp.ones((n,), jnp.float32)),
                T * jnp.mean(trans.reward), jnp.int32(n * env.frame_stack))

    def random_episode(k: jax.Array) -> tuple[acting.Episode, acting.EpisodeStep]:
        k_reset, k_act = jax.random.split(k)
        return acting.random_episode(env, k_reset, k_act, T)

    eps, steps = jax.vmap(random_episode)(jax.random.split(key, c.random_episodes))
    return (flat_steps(steps), jnp.mean(eps.episode_return),
            jnp.sum(steps.valid).astype(jnp.int32))


def held_out_metrics(e2c: E2C, params: Any, key: jax.Array) -> tuple[jax.Array, jax.Array,
                                                                       jax.Array]:
    """(prediction_error, prediction_vs_persistence, goal_correlation) on `eval_batch` fresh
    triples from uniformly drawn states (module docstring, 3)."""
    c, net = e2c.config, e2c.net
    b, q = states.uniform_triples(e2c.env, c.env, key, c.eval_batch)
    rel, vs_still = model_lib.prediction_error(net, params, b.obs, b.action, b.next_obs)
    mu = net.apply(params, b.obs, method=model_lib.E2CNet.encode).mean
    latent_distance = jnp.linalg.norm(mu - goal_latent(e2c, params), axis=-1)
    corr = states.correlation(latent_distance, states.goal_error(e2c.env, c.env, q))
    return rel, vs_still, corr


def flat_steps(steps: acting.EpisodeStep) -> acting.EpisodeStep:
    """steps with leaves [..., T, ...] (valid [..., T]) as one time-ordered batch [N, ...]."""
    return jax.tree_util.tree_map(lambda x: x.reshape((-1,) + x.shape[steps.valid.ndim:]),
                                  steps)


def add_steps(buffer: replay.ReplayBuffer, steps: acting.EpisodeStep) -> replay.ReplayBuffer:
    """Add the valid transitions of steps (leaves [..., T, ...]) in time order."""
    flat = flat_steps(steps)
    return replay.add_masked(buffer, flat.transition, flat.valid > 0)


def make_iteration(e2c: E2C) -> Callable[[E2CState], tuple[E2CState, IterationMetrics]]:
    """step(state) -> (state, IterationMetrics): one E2C iteration (module docstring)."""
    net = e2c.net

    def step(state: E2CState) -> tuple[E2CState, IterationMetrics]:
        key, k_rand, k_fit, k_eval, k_mpc = jax.random.split(state.key, 5)
        rsteps, random_return, random_steps = random_data(e2c, k_rand)
        state = state._replace(buffer=add_steps(state.buffer, rsteps))
        state, terms = fit(e2c, state, k_fit)
        rel, vs_still, corr = held_out_metrics(e2c, state.params, k_eval)
        ep, msteps = mpc_episode(e2c, state, k_mpc)
        z_end = net.apply(state.params, ep.state.obs, method=model_lib.E2CNet.encode).mean
        env_steps = (state.env_steps + random_steps
                     + jnp.sum(msteps.valid).astype(jnp.int32))
        state = state._replace(buffer=add_steps(state.buffer, msteps),
                               iteration=state.iteration + 1, env_steps=env_steps, key=key)
        finite = all_finite(state.params)
        metrics = IterationMetrics(
            env_steps=env_steps, episode_return=ep.episode_return,
            random_return=random_return,
            loss=terms.loss, rec=terms.rec, next_rec=terms.next_rec, kl_prior=terms.kl_prior,
            kl_transition=terms.kl_transition, prediction_error=rel,
            prediction_vs_persistence=vs_still, goal_correlation=corr,
            goal_distance=jnp.linalg.norm(z_end - goal_latent(e2c, state.params)),
            nonfinite=~finite | ~jnp.isfinite(terms.loss))
        return state, metrics

    return step


def iteration_record(i: int, m: IterationMetrics) -> dict:
    record = {"iteration": i}
    for name, value in m._asdict().items():
        if name != "nonfinite":
            record[name] = int(value) if name == "env_steps" else float(value)
    return record


def make_program(config: Config) -> Program:
    """The run as a Program: `config.iterations` E2C iterations."""
    e2c = build(config)
    return Program(make_init(e2c), (Segment(make_iteration(e2c), config.iterations),),
                   iteration_record, config.on_nonfinite)


def make_policy(config: Config, final_state: E2CState):
    """(init_carry, policy): latent iLQR-MPC without exploration noise; the carry is the
    planner's warm start, obs the pixel observation [H, W, C]."""
    e2c = build(config)
    params = jax.tree_util.tree_map(jnp.asarray, final_state.params)
    hp = jax.tree_util.tree_map(jnp.asarray, final_state.hparams)
    costs = control.Costs(hp.state_cost, hp.action_cost)
    z_goal = goal_latent(e2c, params)

    def init_carry(key: jax.Array) -> Any:
        return e2c.controller.planner.init(e2c.env.action_size, key)

    def policy(carry, obs, key):
        del key
        u, carry, info = e2c.controller.act(params, carry, obs, z_goal, costs)
        return carry, jnp.clip(u, -1.0, 1.0), {"planned_return": info["best_return"]}

    return init_carry, policy


def grid_leaves(config: Config) -> dict:
    """learning_rate (the Adam state) and the Hyper leaves: `--grid.state_cost=0.5,1`."""
    del config

    def hyper(name):
        return lambda state, v: state._replace(hparams=state.hparams._replace(**{name: v}))

    def learning_rate(state, v):
        return state._replace(opt_state=optim.set_hyperparams(state.opt_state,
                                                              learning_rate=v))

    leaves = {name: hyper(name) for name in Hyper._fields}
    leaves["learning_rate"] = learning_rate
    return leaves
