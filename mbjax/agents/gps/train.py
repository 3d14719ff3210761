"""Guided policy search as one compiled Program (Levine & Abbeel 2014; Levine et al. 2016).

One iteration (`make_iteration`), all inside one jitted step:

1. N rollouts of the current linear-Gaussian controller u = K_t x + k_t + chol(S_t) eps
   (clipped to [-1, 1], as the env does), vmapped; masked after termination (`acting`).
2. The global prior's running moments absorb the new transitions; per-step linear-Gaussian
   dynamics are fitted with the NIW prior (`dynamics.fit_dynamics`).
3. The cost -reward + 1/2 state_cost |x|^2 + 1/2 action_cost |u|^2 (x' from the fitted mean
   dynamics) is expanded to second order around the controller's predicted trajectory.
4. Step-size rule: epsilon = kl_step x step_mult, step_mult adapted from the improvement of the
   expected cost that the previous iteration predicted and the one now measured.
5. KL-bounded LQR update with the eta search (`trajectory.solve_eta`).
6. The neural policy regresses onto the new controller's mean actions at the sampled states,
   weighted by its precision; its mean action is evaluated for `eval_episodes` episodes (the
   record's `episode_return`; the rollouts' mean return is `sample_return`).

Shapes: N rollouts, T steps, S observation size, A actions.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from mbjax import acting, envs, optim
from mbjax.agents.gps import dynamics as dyn_lib
from mbjax.agents.gps import policy as policy_lib
from mbjax.agents.gps import trajectory as traj_lib
from mbjax.agents.gps.config import Config
from mbjax.agents.program import Program, Segment
from mbjax.envs.discrete import require_continuous


class Hyper(NamedTuple):
    """float32 [] leaves (grid axes): kl_step, prior_strength, state_cost, action_cost."""

    kl_step: jax.Array
    prior_strength: jax.Array
    state_cost: jax.Array
    action_cost: jax.Array


class GPSState(NamedTuple):
    """controller: the one the next rollouts use; policy: the neural policy; moments: running
    moments of all transitions y = [x; u; x'] (the prior); step_mult [], prev_cost [] (expected
    cost of the controller before the last update, under the last fit), predicted [] (the
    improvement the last update predicted), eta [] (last dual variable), iteration [] int32,
    env_steps [] int32, key."""

    controller: traj_lib.Controller
    policy: policy_lib.PolicyState
    moments: dyn_lib.Moments
    hparams: Hyper
    step_mult: jax.Array
    prev_cost: jax.Array
    predicted: jax.Array
    eta: jax.Array
    iteration: jax.Array
    env_steps: jax.Array
    key: jax.Array


class Rollouts(NamedTuple):
    """obs [N, T, S], actions [N, T, A] (as applied), next_obs [N, T, S], valid [N, T],
    returns [N]."""

    obs: jax.Array
    actions: jax.Array
    next_obs: jax.Array
    valid: jax.Array
    returns: jax.Array


class IterationMetrics(NamedTuple):
    env_steps: jax.Array
    episode_return: jax.Array  # the neural policy's mean evaluation return
    sample_return: jax.Array  # the controller rollouts' mean return
    kl: jax.Array  # mean per-step KL(new || old) under the new trajectory distribution
    kl_target: jax.Array  # epsilon of this update
    eta: jax.Array
    eta_solves: jax.Array
    eta_ok: jax.Array
    step_mult: jax.Array
    expected_cost: jax.Array  # of the sampled controller under this iteration's fit
    predicted_improvement: jax.Array  # of the new controller, under this fit
    policy_loss: jax.Array
    nonfinite: jax.Array


def make_env(config: Config) -> Any:
    """The env of `config` (one-line ValueError for a discrete or pixel env, or one whose reward
    cannot be computed exactly from observations)."""
    if config.env in envs.task_names():  # checked before make: Brax warns on stderr there
        task = envs.task_fns(config.env)
        if not task.reward_is_exact:
            raise ValueError(f"env {config.env!r}: its reward cannot be computed exactly from "
                             f"observations ({task.note}); gps expands the known reward")
    env = envs.make(config.env, episode_length=config.episode_length)
    require_continuous(env, config.env, "gps")
    if not isinstance(env.observation_size, int):
        raise ValueError(f"env {config.env} has image observations; gps needs vector ones")
    envs.task_fns(config.env)  # an env without task functions: task_fns' one-line error
    return env


def horizon_of(env: Any) -> int:
    return int(env.episode_length)


def rollout(env: Any, ctrl: traj_lib.Controller, key: jax.Array) -> Rollouts:
    """One masked rollout of `ctrl` (leaves without the N axis; vmap over keys for N)."""
    k_reset, k_noise = jax.random.split(key)
    horizon, action_size = ctrl.k.shape
    noise = jax.random.normal(k_noise, (horizon, action_size))
    chol = jnp.linalg.cholesky(ctrl.cov)

    def body(ep: acting.Episode, inp):
        K, k, L, eps = inp
        x = ep.state.obs
        u = jnp.clip(K @ x + k + L @ eps, -1.0, 1.0)
        ep, out = acting.episode_step(env, ep, u)
        return ep, (x, u, out.transition.next_obs, out.valid)

    ep, (xs, us, next_xs, valid) = jax.lax.scan(
        body, acting.start_episode(env, k_reset), (ctrl.K, ctrl.k, chol, noise))
    return Rollouts(xs, us, next_xs, valid, ep.episode_return)


def make_costs(reward_fn: Callable, dyn: dyn_lib.LinearGaussianDynamics, hp: Hyper,
               state_size: int) -> tuple[Callable, Callable]:
    """(stage_cost(y [S+A], t) -> [], final_cost(x [S]) -> []): -reward(x, u, F_t y + f_t) +
    1/2 state_cost |x|^2 + 1/2 action_cost |u|^2; terminal 1/2 state_cost |x_T|^2."""

    def stage(y: jax.Array, t: jax.Array) -> jax.Array:
        x, u = y[:state_size], y[state_size:]
        next_x = dyn.F[t] @ y + dyn.f[t]
        return (-reward_fn(x, u, next_x) + 0.5 * hp.state_cost * x @ x
                + 0.5 * hp.action_cost * u @ u)

    def final(x: jax.Array) -> jax.Array:
        return 0.5 * hp.state_cost * x @ x

    return stage, final


def make_init(env: Any, config: Config, network, optimizer) -> Callable[[jax.Array], GPSState]:
    s, a = env.observation_size, env.action_size
    f32 = lambda v: jnp.asarray(v, jnp.float32)  # noqa: E731

    def init(key: jax.Array) -> GPSState:
        key, k_policy = jax.random.split(key)
        return GPSState(
            controller=traj_lib.initial_controller(horizon_of(env), s, a, config.init_action_std),
            policy=policy_lib.init_policy(network, optimizer, s, k_policy),
            moments=dyn_lib.empty_moments(2 * s + a),
            hparams=Hyper(f32(config.kl_step), f32(config.prior_strength),
                          f32(config.state_cost), f32(config.action_cost)),
            step_mult=f32(1.0), prev_cost=f32(0.0), predicted=f32(0.0), eta=f32(1.0),
            iteration=jnp.int32(0), env_steps=jnp.int32(0), key=key)

    return init


def update_controller(config: Config, state: GPSState, dyn: dyn_lib.LinearGaussianDynamics,
                      cost: traj_lib.QuadraticCost) -> tuple[GPSState, traj_lib.EtaSearch, Any]:
    """Steps 4-5 of the module docstring: (state with the new controller and step statistics,
    the eta search, the sampled controller's expected cost)."""
    old = state.controller
    cur_cost = traj_lib.expected_cost(cost, traj_lib.forward(dyn, old))
    adjusted = traj_lib.adjust_step(state.step_mult, state.predicted, state.prev_cost - cur_cost,
                                    config.min_step_mult, config.max_step_mult)
    step_mult = jnp.where(state.iteration > 0, adjusted, state.step_mult)
    epsilon = state.hparams.kl_step * step_mult
    search = traj_lib.solve_eta(dyn, cost, old, epsilon, config.eta_min, config.eta_max,
                                config.eta_tolerance, config.eta_iterations)
    new = jax.tree_util.tree_map(lambda n, o: jnp.where(search.ok, n, o), search.controller, old)
    new_cost = traj_lib.expected_cost(cost, traj_lib.forward(dyn, new))
    state = state._replace(controller=new, step_mult=step_mult, prev_cost=cur_cost,
                           predicted=cur_cost - new_cost, eta=search.eta)
    return state, search, (cur_cost, epsilon)


def make_iteration(env: Any, config: Config, network, optimizer) -> Callable:
    """step(state) -> (state, IterationMetrics): one GPS iteration (module docstring)."""
    reward_fn = envs.task_fns(config.env).reward_fn
    s = env.observation_size
    horizon = horizon_of(env)

    def act(params: policy_lib.PolicyState, obs: jax.Array, key: jax.Array) -> jax.Array:
        return jnp.clip(policy_lib.policy_mean(network, params, obs), -1.0, 1.0)

    def step(state: GPSState) -> tuple[GPSState, IterationMetrics]:
        key, k_roll, k_eval = jax.random.split(state.key, 3)
        ro = jax.vmap(lambda k: rollout(env, state.controller, k))(
            jax.random.split(k_roll, config.num_rollouts))
        ys = dyn_lib.transitions(ro.obs, ro.actions, ro.next_obs)
        moments = dyn_lib.merge_moments(
            state.moments, dyn_lib.moments_of(ys.reshape(-1, ys.shape[-1]), ro.valid.reshape(-1)))
        prior = dyn_lib.global_prior(moments, state.hparams.prior_strength,
                                     config.dynamics_regularization)
        dyn = dyn_lib.fit_dynamics(prior, ro.obs, ro.actions, ro.next_obs, ro.valid,
                                   config.dynamics_regularization)
        stage, final = make_costs(reward_fn, dyn, state.hparams, s)
        cost = traj_lib.expand_cost(stage, final, traj_lib.forward(dyn, state.controller))
        state, search, (cur_cost, epsilon) = update_controller(
            config, state._replace(moments=moments), dyn, cost)
        ctrl = state.controller
        target = jnp.einsum("tas,nts->nta", ctrl.K, ro.obs) + ctrl.k
        precision = jnp.broadcast_to(jnp.linalg.inv(ctrl.cov), (config.num_rollouts,)
                                     + ctrl.cov.shape)
        flat = lambda v: v.reshape((-1,) + v.shape[2:])  # noqa: E731
        pstate, loss = policy_lib.fit_policy(network, optimizer, state.policy, flat(ro.obs),
                                             flat(target), flat(precision), flat(ro.valid),
                                             config.policy_steps)
        returns = acting.evaluate(env, act, pstate, k_eval, config.eval_episodes, horizon)
        env_steps = state.env_steps + jnp.sum(ro.valid).astype(jnp.int32)
        state = state._replace(policy=pstate, iteration=state.iteration + 1,
                               env_steps=env_steps, key=key)
        finite = jnp.all(jnp.asarray([jnp.all(jnp.isfinite(v)) for v in
                                      jax.tree_util.tree_leaves((ctrl, pstate.params))]))
        metrics = IterationMetrics(
            env_steps=env_steps, episode_return=jnp.mean(returns),
            sample_return=jnp.mean(ro.returns), kl=search.kl, kl_target=epsilon,
            eta=search.eta, eta_solves=search.iterations, eta_ok=search.ok,
            step_mult=state.step_mult, expected_cost=cur_cost,
            predicted_improvement=state.predicted, policy_loss=loss,
            nonfinite=~finite | ~jnp.isfinite(loss))
        return state, metrics

    return step


def iteration_record(i: int, m: IterationMetrics) -> dict:
    record = {"iteration": i}
    for name, value in m._asdict().items():
        if name == "nonfinite":
            continue
        record[name] = int(value) if name in ("env_steps", "eta_solves") else (
            bool(value) if name == "eta_ok" else float(value))
    return record


def make_program(config: Config) -> Program:
    """The run as a Program: `config.iterations` GPS iterations."""
    env = make_env(config)
    network = policy_lib.make_network(config.policy_hidden_sizes, env.action_size)
    optimizer = policy_lib.make_optimizer(config.policy_learning_rate)
    step = make_iteration(env, config, network, optimizer)
    return Program(make_init(env, config, network, optimizer),
                   (Segment(step, config.iterations),), iteration_record, config.on_nonfinite)


def make_policy(config: Config, final_state: GPSState):
    """(init_carry, policy): the neural policy's mean action, clipped to [-1, 1]."""
    env = make_env(config)
    network = policy_lib.make_network(config.policy_hidden_sizes, env.action_size)
    pstate = jax.tree_util.tree_map(jnp.asarray, final_state.policy)

    def policy(carry, obs, key):
        del key
        return carry, jnp.clip(policy_lib.policy_mean(network, pstate, obs), -1.0, 1.0), {}

    return (lambda key: ()), policy


def grid_leaves(config: Config) -> dict:
    """kl_step / prior_strength / state_cost / action_cost (state.hparams) and
    policy_learning_rate (the Adam state): `--grid.kl_step=0.1,0.5` in `experiments.sweep`."""
    del config

    def hyper(name):
        return lambda state, v: state._replace(hparams=state.hparams._replace(**{name: v}))

    def learning_rate(state, v):
        opt_state = optim.set_hyperparams(state.policy.opt_state, learning_rate=v)
        return state._replace(policy=state.policy._replace(opt_state=opt_state))

    leaves = {name: hyper(name) for name in Hyper._fields}
    leaves["policy_learning_rate"] = learning_rate
    return leaves
