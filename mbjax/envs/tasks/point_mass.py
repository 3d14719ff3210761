"""`point_mass`: a 1-D point mass pushed towards a goal position. Tiny; meant for fast tests.

State q = [x, v]; obs = [x, v]; action a in [-1, 1] is the force (mass 1, so also the acceleration).
Semi-implicit Euler with dt = 0.1: v' = v + dt*a, x' = x + dt*v'. Starts at x ~ U(-0.1, 0.1), v = 0.
Reward = -(x' - goal)^2 - action_cost * a^2 (goal = 1.0, action_cost = 0.01); 50-step episodes;
never terminates.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mbjax.envs.tasks.common import PureJaxTask

DEFAULT_EPISODE_LENGTH = 50


def point_mass_reward(obs, action, next_obs, goal: float = 1.0, action_cost: float = 0.01):
    """reward from observations: next_obs [..., 2], action [..., 1] -> [...]."""
    del obs
    a = jnp.clip(action, -1.0, 1.0)
    return -jnp.square(next_obs[..., 0] - goal) - action_cost * jnp.sum(jnp.square(a), axis=-1)


class PointMass(PureJaxTask):
    q_size = 2
    obs_size = 2
    dt = 0.1
    default_episode_length = DEFAULT_EPISODE_LENGTH

    def __init__(self, goal: float = 1.0, action_cost: float = 0.01):
        self.goal = float(goal)
        self.action_cost = float(action_cost)

    def init_q(self, key: jax.Array) -> jax.Array:
        x = jax.random.uniform(key, (), minval=-0.1, maxval=0.1)
        return jnp.stack([x, jnp.zeros(())])

    def dynamics(self, q: jax.Array, u: jax.Array) -> jax.Array:
        v = q[1] + self.dt * u[0]
        return jnp.stack([q[0] + self.dt * v, v])

    def observe(self, q: jax.Array) -> jax.Array:
        return q

    def reward(self, q: jax.Array, u: jax.Array, q_next: jax.Array) -> jax.Array:
        return -((q_next[0] - self.goal) ** 2) - self.action_cost * u[0] ** 2
