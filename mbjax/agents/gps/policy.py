"""The neural policy of guided policy search, trained by supervised regression onto the
linear-Gaussian controllers (Levine et al. 2016, "End-to-End Training of Deep Visuomotor
Policies", JMLR, section 4: the supervised policy step, each action error weighted by the
controller's precision S_t^-1).

A flax ReLU MLP (`mbjax.agents.sac.networks.MLP`) maps the normalised observation to the action
mean; Adam from optax (`inject_hyperparams`, so the learning rate is a state leaf). The
regression is full batch over one iteration's samples: N rollouts x T steps, masked by `valid`.
Not implemented: the BADMM dual terms that pull the controllers towards the policy (Levine et
al. 2016, section 3); the controllers are bounded only by their own KL step.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from mbjax.agents.sac.networks import MLP


class PolicyState(NamedTuple):
    """params (flax), opt_state (Adam with its learning rate as a leaf), obs_mean [S],
    obs_std [S]: the input normaliser of the latest regression's samples."""

    params: Any
    opt_state: Any
    obs_mean: jax.Array
    obs_std: jax.Array


def make_network(hidden_sizes: tuple[int, ...], action_size: int) -> MLP:
    return MLP(tuple(hidden_sizes), action_size)


def make_optimizer(learning_rate: float) -> optax.GradientTransformation:
    return optax.inject_hyperparams(optax.adam)(learning_rate=learning_rate)


def init_policy(network: MLP, optimizer: optax.GradientTransformation, obs_size: int,
                key: jax.Array) -> PolicyState:
    params = network.init(key, jnp.zeros((obs_size,), jnp.float32))
    return PolicyState(params, optimizer.init(params), jnp.zeros((obs_size,), jnp.float32),
                       jnp.ones((obs_size,), jnp.float32))


def policy_mean(network: MLP, state: PolicyState, obs: jax.Array) -> jax.Array:
    """The policy's action mean: obs [..., S] -> [..., A] (unclipped)."""
    return network.apply(state.params, (obs - state.obs_mean) / state.obs_std)


def regression_loss(params: Any, network: MLP, state: PolicyState, obs: jax.Array,
                    target: jax.Array, precision: jax.Array, weight: jax.Array) -> jax.Array:
    """sum_i w_i (pi(x_i) - mu_i)' P_i (pi(x_i) - mu_i) / sum_i w_i: obs [B, S], target [B, A],
    precision [B, A, A], weight [B]."""
    diff = network.apply(params, (obs - state.obs_mean) / state.obs_std) - target
    per_row = jnp.einsum("ba,bac,bc->b", diff, precision, diff)
    return jnp.sum(weight * per_row) / jnp.maximum(jnp.sum(weight), 1.0)


def fit_policy(network: MLP, optimizer: optax.GradientTransformation, state: PolicyState,
               obs: jax.Array, target: jax.Array, precision: jax.Array, weight: jax.Array,
               steps: int) -> tuple[PolicyState, jax.Array]:
    """`steps` full-batch Adam steps (a `lax.scan`) after resetting the input normaliser to the
    weighted moments of obs: (state, final loss [])."""
    total = jnp.maximum(jnp.sum(weight), 1.0)
    mean = jnp.sum(weight[:, None] * obs, axis=0) / total
    var = jnp.sum(weight[:, None] * (obs - mean) ** 2, axis=0) / total
    state = state._replace(obs_mean=mean, obs_std=jnp.sqrt(var) + 1e-3)

    def step(carry, _):
        params, opt_state = carry
        grads = jax.grad(regression_loss)(params, network, state, obs, target, precision, weight)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), None

    (params, opt_state), _ = jax.lax.scan(step, (state.params, state.opt_state), None,
                                          length=steps)
    state = state._replace(params=params, opt_state=opt_state)
    return state, regression_loss(params, network, state, obs, target, precision, weight)
