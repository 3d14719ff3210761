"""The BPTT / SVG learner: a policy (and SVG(1)'s value) updated by pathwise gradients.

    learner = make_learner(config, model, obs_size, action_size, reward_fn, termination_fn)
    state = learner.init(key)
    state, metrics = learner.update(state, model_state, starts [N, S], key)
    action = learner.act(state.policy_params, obs [..., S], key, deterministic=False)

The networks are SAC's (`mbjax.agents.sac.networks`: an MLP giving the pre-tanh mean and
log-std, and an MLP for V) and the tanh-Gaussian is SAC's (`sac.distribution`); the objective is
`mbjax.agents.pathwise` (shared with MAAC). A 'deterministic' policy is tanh(mean) of the same
network (its log-std head unused). SVG(1)'s value is trained by TD(0) on the policy's imagined
first step: V(s_0) -> r_0 + gamma (1 - d_0) V_target(s_1), the target Polyak-averaged (rate tau).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from mbjax.agents import pathwise
from mbjax.agents.bptt.config import Config
from mbjax.agents.sac import distribution
from mbjax.agents.sac.networks import MLP, PolicyNetwork

# SAC's default log-std bounds.
LOG_STD_BOUNDS = (-5.0, 2.0)


@struct.dataclass
class Hyperparams:
    """Numeric settings kept as float32 leaves (a grid vmaps over them without retracing)."""

    discount: jax.Array
    max_grad_norm: jax.Array
    exploration_std: jax.Array
    tau: jax.Array


@struct.dataclass
class LearnerState:
    """Policy and (SVG(1) only, else None) value parameters with their Adam states."""

    policy_params: Any
    policy_opt_state: optax.OptState
    value_params: Any
    target_value_params: Any
    value_opt_state: Any
    hparams: Hyperparams


class Learner(NamedTuple):
    init: Callable[[jax.Array], LearnerState]
    update: Callable[..., tuple[LearnerState, dict]]
    act: Callable[..., jax.Array]


def _f32(x: float) -> jax.Array:
    return jnp.asarray(x, jnp.float32)


def make_learner(config: Config, model: Any, obs_size: int, action_size: int,
                 reward_fn: Any, termination_fn: Any) -> Learner:
    """The learner's functions for `config` and a protocol `model` (learned or true)."""
    policy_net = PolicyNetwork(config.hidden_sizes, action_size, *LOG_STD_BOUNDS)
    value_net = MLP(config.hidden_sizes, 1)
    policy_opt = optax.inject_hyperparams(optax.adam)(learning_rate=config.policy_lr)
    value_opt = optax.inject_hyperparams(optax.adam)(learning_rate=config.value_lr)
    svg1 = config.value == "svg1"
    gaussian = config.policy == "gaussian"

    def act(params: Any, obs: jax.Array, key: jax.Array, deterministic: bool = False) -> jax.Array:
        """obs [..., S] -> action [..., A]: the reparameterised tanh-Gaussian sample (gaussian),
        or tanh(mean) (deterministic policies, or `deterministic`, static)."""
        mean, log_std = policy_net.apply(params, obs)
        if deterministic or not gaussian:
            return distribution.mode(mean)
        return distribution.sample_and_log_prob(mean, log_std, key)[0]

    def value(params: Any, obs: jax.Array) -> jax.Array:
        return value_net.apply(params, obs)[..., 0]

    def init(key: jax.Array) -> LearnerState:
        k_policy, k_value = jax.random.split(key)
        policy_params = policy_net.init(k_policy, jnp.zeros((1, obs_size)))
        value_params = value_net.init(k_value, jnp.zeros((1, obs_size))) if svg1 else None
        return LearnerState(
            policy_params=policy_params, policy_opt_state=policy_opt.init(policy_params),
            value_params=value_params, target_value_params=value_params,
            value_opt_state=value_opt.init(value_params) if svg1 else None,
            hparams=Hyperparams(_f32(config.discount), _f32(config.max_grad_norm),
                                _f32(config.exploration_std), _f32(config.tau)),
        )

    def objective(policy_params, value_params, model_state, starts, key, discount):
        terminal = None if not svg1 else (lambda obs, k: value(value_params, obs))
        return pathwise.imagined_objective(
            model, model_state, lambda p, obs, k: act(p, obs, k), policy_params, starts,
            config.horizon, key, discount, reward_fn=reward_fn, termination_fn=termination_fn,
            terminal_value=terminal,
        )

    def value_step(state: LearnerState, imagined: Any) -> tuple[LearnerState, jax.Array]:
        """One TD(0) step of V on the imagined first transitions (held fixed)."""
        hp = state.hparams
        im = jax.lax.stop_gradient(imagined)
        target = im.rewards[0] + hp.discount * (1.0 - im.dones[0]) * value(
            state.target_value_params, im.obs[1])

        def loss(params):
            return 0.5 * jnp.mean((value(params, im.obs[0]) - target) ** 2)

        v_loss, grads = jax.value_and_grad(loss)(state.value_params)
        updates, opt_state = value_opt.update(grads, state.value_opt_state)
        params = optax.apply_updates(state.value_params, updates)
        target_params = jax.tree_util.tree_map(
            lambda t, p: (1.0 - hp.tau) * t + hp.tau * p, state.target_value_params, params)
        return state.replace(value_params=params, target_value_params=target_params,
                             value_opt_state=opt_state), v_loss

    def update(state: LearnerState, model_state: Any, starts: jax.Array,
               key: jax.Array) -> tuple[LearnerState, dict]:
        """One policy step (gradient ascent on the pathwise objective) from starts [N, S]; with
        SVG(1), then one value step."""
        hp = state.hparams
        (j, (terms, im)), grads = jax.value_and_grad(
            lambda p: objective(p, state.value_params, model_state, starts, key, hp.discount),
            has_aux=True)(state.policy_params)
        grads = jax.tree_util.tree_map(jnp.negative, grads)  # ascent
        grads, grad_norm = pathwise.clip_gradients(grads, hp.max_grad_norm)
        updates, opt_state = policy_opt.update(grads, state.policy_opt_state)
        state = state.replace(policy_params=optax.apply_updates(state.policy_params, updates),
                              policy_opt_state=opt_state)
        metrics = {"objective": j, "model_return": jnp.mean(terms.model_return),
                   "grad_norm": grad_norm}
        if svg1:
            state, v_loss = value_step(state, im)
            metrics["value_loss"] = v_loss
        return state, metrics

    return Learner(init=init, update=update, act=act)


def explore(learner: Learner, state: LearnerState, obs: jax.Array, key: jax.Array,
            gaussian: bool) -> jax.Array:
    """The training action for obs [N, S]: a policy sample (gaussian) or the mean plus
    N(0, exploration_std^2) noise (deterministic), in [-1, 1]."""
    k_act, k_noise = jax.random.split(key)
    action = learner.act(state.policy_params, obs, k_act)
    if gaussian:
        return action
    noise = state.hparams.exploration_std * jax.random.normal(k_noise, action.shape)
    return jnp.clip(action + noise, -1.0, 1.0)
