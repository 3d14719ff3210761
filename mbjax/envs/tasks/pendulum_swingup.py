"""`pendulum_swingup`: torque-limited pendulum swing-up with gym Pendulum-v1 dynamics.

State q = [th, thdot] with th = 0 upright; starts hanging down (th = pi + U(-0.1, 0.1),
thdot ~ U(-0.1, 0.1)). Native torque u = 2 * a. Per step (dt = 0.05, g = 10, m = l = 1):
thdot' = clip(thdot + (3g/(2l) sin th + 3/(m l^2) u) dt, -8, 8), th' = th + thdot' dt.
obs = [cos th, sin th, thdot].

Reward (on the state reached, so the action is what is rewarded; gym scores the state before):
  reward_type='quadratic' (default): -(wrap(th')^2 + 0.1 thdot'^2 + 0.001 u^2)
  reward_type='cosine':              cos(th') - 0.001 u^2
200-step episodes; never terminates.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mbjax.envs.tasks.common import PureJaxTask

DEFAULT_EPISODE_LENGTH = 200
MAX_TORQUE = 2.0
MAX_SPEED = 8.0
REWARD_TYPES = ("quadratic", "cosine")


def pendulum_reward(obs, action, next_obs, reward_type: str = "quadratic"):
    """reward from observations: next_obs [..., 3] = [cos, sin, thdot], action [..., 1] -> [...]."""
    del obs
    u = MAX_TORQUE * jnp.clip(action[..., 0], -1.0, 1.0)
    cos, sin, thdot = next_obs[..., 0], next_obs[..., 1], next_obs[..., 2]
    if reward_type == "cosine":
        return cos - 0.001 * u**2
    th = jnp.arctan2(sin, cos)  # wrapped to [-pi, pi]
    return -(th**2 + 0.1 * thdot**2 + 0.001 * u**2)


class PendulumSwingup(PureJaxTask):
    q_size = 2
    obs_size = 3
    dt = 0.05
    default_episode_length = DEFAULT_EPISODE_LENGTH
    action_scale = MAX_TORQUE

    def __init__(self, reward_type: str = "quadratic"):
        if reward_type not in REWARD_TYPES:
            raise ValueError(
                f"pendulum_swingup: reward_type={reward_type!r} is not one of {REWARD_TYPES}"
            )
        self.reward_type = reward_type

    def init_q(self, key: jax.Array) -> jax.Array:
        noise = jax.random.uniform(key, (2,), minval=-0.1, maxval=0.1)
        return jnp.array([jnp.pi, 0.0]) + noise

    def dynamics(self, q: jax.Array, u: jax.Array) -> jax.Array:
        g, m, length = 10.0, 1.0, 1.0
        th, thdot = q[0], q[1]
        acc = 3.0 * g / (2.0 * length) * jnp.sin(th) + 3.0 / (m * length**2) * u[0]
        thdot = jnp.clip(thdot + acc * self.dt, -MAX_SPEED, MAX_SPEED)
        return jnp.stack([th + thdot * self.dt, thdot])

    def observe(self, q: jax.Array) -> jax.Array:
        return jnp.stack([jnp.cos(q[0]), jnp.sin(q[0]), q[1]])

    def reward(self, q: jax.Array, u: jax.Array, q_next: jax.Array) -> jax.Array:
        th, thdot = q_next[0], q_next[1]
        if self.reward_type == "cosine":
            return jnp.cos(th) - 0.001 * u[0] ** 2
        wrapped = jnp.mod(th + jnp.pi, 2.0 * jnp.pi) - jnp.pi
        return -(wrapped**2 + 0.1 * thdot**2 + 0.001 * u[0] ** 2)
