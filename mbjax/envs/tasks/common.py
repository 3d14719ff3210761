"""Shared scaffolding for mbjax's small pure-JAX tasks.

A task supplies its physics as pure functions of a flat state vector `q`; this base turns them
into a Brax-protocol environment: clip the action to [-1, 1], rescale it to the native range,
integrate, observe, and compute reward and termination from the *physical* state (the planning
functions in `mbjax.envs.task_fns` recompute them from observations, so the agreement test
compares two code paths).
"""

from __future__ import annotations

import abc

import jax
import jax.numpy as jnp

from mbjax.envs.base import Env, State


class PureJaxTask(Env):
    """Base class: subclasses set `q_size`, `obs_size`, `act_size`, `dt`, `default_episode_length`,
    `action_scale` and implement the abstract physics methods (all unbatched, pure)."""

    q_size: int
    obs_size: int
    act_size: int = 1
    dt: float
    default_episode_length: int
    action_scale: float = 1.0  # native action = action_scale * clip(action, -1, 1)

    @abc.abstractmethod
    def init_q(self, key: jax.Array) -> jax.Array:
        """Initial physical state `[q_size]`."""

    @abc.abstractmethod
    def dynamics(self, q: jax.Array, u: jax.Array) -> jax.Array:
        """Next physical state after one control step with native action `u: [A]`."""

    @abc.abstractmethod
    def observe(self, q: jax.Array) -> jax.Array:
        """Observation `[obs_size]` of physical state `q`."""

    @abc.abstractmethod
    def reward(self, q: jax.Array, u: jax.Array, q_next: jax.Array) -> jax.Array:
        """Scalar reward of a transition (native action `u`)."""

    def terminated(self, q_next: jax.Array) -> jax.Array:
        """Scalar bool: the episode ends by termination at `q_next` (default: never)."""
        del q_next
        return jnp.zeros((), bool)

    def reset(self, rng: jax.Array) -> State:
        q = self.init_q(rng).astype(jnp.float32)
        zero = jnp.zeros((), jnp.float32)
        return State(pipeline_state=q, obs=self.observe(q), reward=zero, done=zero)

    def step(self, state: State, action: jax.Array) -> State:
        u = self.action_scale * jnp.clip(jnp.asarray(action, jnp.float32), -1.0, 1.0)
        q = state.pipeline_state
        q_next = self.dynamics(q, u)
        reward = self.reward(q, u, q_next).astype(jnp.float32)
        done = self.terminated(q_next).astype(jnp.float32)
        obs = self.observe(q_next)
        return state.replace(pipeline_state=q_next, obs=obs, reward=reward, done=done)

    @property
    def observation_size(self) -> int:
        return self.obs_size

    @property
    def action_size(self) -> int:
        return self.act_size
