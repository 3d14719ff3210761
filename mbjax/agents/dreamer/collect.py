"""Dreamer acting: the RSSM filter kept per env, the actor on its latent, and env steps into the
per-env replay buffers.

The filter follows the RSSM's time convention (`mbjax.models.rssm.model`): at an episode's
first observation the latent and the previous action are reset (is_first = 1); after each step
the posterior takes the action that led to the new observation. `FilterCarry` is the carry of
`make_policy`'s policy as well, so training and evaluation act with the same function.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from mbjax import acting, replay
from mbjax.agents.dreamer.behavior import Behavior
from mbjax.models.rssm import latent as lat
from mbjax.models.rssm.model import RSSMModel


class FilterCarry(NamedTuple):
    """latent (Latent [...]), prev_action [..., A] (one-hot if discrete), is_first [...]:
    the filter's state before the next observation."""

    latent: lat.Latent
    prev_action: jax.Array
    is_first: jax.Array


def initial_carry(model: RSSMModel, batch_shape: tuple[int, ...]) -> FilterCarry:
    """A carry that starts an episode (zero latent and action, is_first = 1)."""
    return FilterCarry(model.initial(batch_shape),
                       jnp.zeros(batch_shape + (model.action_size,), jnp.float32),
                       jnp.ones(batch_shape, jnp.float32))


def env_action(action: jax.Array, discrete: bool) -> jax.Array:
    """The agent's action [..., A] as the env takes it: int32 [...] (argmax) if discrete."""
    return jnp.argmax(action, -1).astype(jnp.int32) if discrete else action


def policy_step(model: RSSMModel, behavior: Behavior, model_params: Any, actor_params: Any,
                carry: FilterCarry, obs: jax.Array, key: jax.Array,
                deterministic: bool) -> tuple[FilterCarry, jax.Array]:
    """Filter obs [..., *obs_shape] into the latent, act on it: (carry, action [..., A]).

    The returned carry has is_first = 0; the caller sets it where an episode restarts."""
    k_filter, k_act = jax.random.split(key)
    latent, _, _ = model.fns.filter_step(model_params, carry.latent, carry.prev_action, obs,
                                         carry.is_first, k_filter)
    action = behavior.act(actor_params, lat.feature(latent), k_act, deterministic)
    return FilterCarry(latent, action, jnp.zeros_like(carry.is_first)), action


def random_action(key: jax.Array, shape: tuple[int, ...], discrete: bool) -> jax.Array:
    """Uniform actions [*shape]: in [-1, 1], or uniformly drawn one-hot classes."""
    if discrete:
        return jax.nn.one_hot(jax.random.randint(key, shape[:-1], 0, shape[-1]), shape[-1])
    return acting.random_actions(key, shape)


def collect_step(env: Any, model: RSSMModel, behavior: Behavior, discrete: bool,
                 envs: acting.EnvBatch, buffers: replay.ReplayBuffer, carry: FilterCarry,
                 model_params: Any, actor_params: Any, key: jax.Array, random: bool):
    """One agent step of all E envs (auto-reset) -> (envs, buffers, carry).

    random (static): uniform actions instead of the actor's samples (the filter still runs, so
    the carry is current when the actor takes over). Each env's transition goes into its own
    buffer (leaves [E, C, ...]) with the agent's action (one-hot if discrete)."""
    k_policy, k_random, k_reset = jax.random.split(key, 3)
    carry, action = policy_step(model, behavior, model_params, actor_params, carry,
                                envs.state.obs, k_policy, deterministic=False)
    if random:
        action = random_action(k_random, action.shape, discrete)
    envs, transitions = acting.step_batch(env, envs, env_action(action, discrete), k_reset)
    transitions = transitions.replace(action=action)
    buffers = jax.vmap(replay.add)(buffers, jax.tree.map(lambda x: x[:, None], transitions))
    ended = jnp.maximum(transitions.terminated, transitions.truncated)
    return envs, buffers, carry._replace(prev_action=action, is_first=ended)
