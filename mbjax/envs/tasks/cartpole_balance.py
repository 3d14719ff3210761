"""`cartpole_balance`: mbrl-lib's continuous cart-pole (gym CartPole-v1 physics, continuous force).

State and obs = [x, xdot, th, thdot] (th = 0 upright; the gym/mbrl-lib layout: the angle is kept raw
because termination bounds it to +-12 deg, so it never wraps). Start: all four ~ U(-0.05, 0.05).
Force F = 10 * a (force_mag = 10); explicit Euler, tau = 0.02, g = 9.8, cart 1.0 kg, pole 0.1 kg,
half-length 0.5. Reward 1.0 for every step taken (including the terminating one, as in gym);
terminates when |th'| > 12 deg or |x'| > 2.4; 200-step episodes.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from mbjax.envs.tasks.common import PureJaxTask

DEFAULT_EPISODE_LENGTH = 200
THETA_THRESHOLD = 12.0 * 2.0 * math.pi / 360.0
X_THRESHOLD = 2.4


def cartpole_balance_reward(obs, action, next_obs):
    """1 per step: obs/next_obs [..., 4], action [..., 1] -> [...]."""
    del obs, action
    return jnp.ones(next_obs.shape[:-1], next_obs.dtype)


def cartpole_balance_termination(obs, action, next_obs):
    """True where the pole fell or the cart left the track: next_obs [..., 4] -> [...] bool."""
    del obs, action
    x, th = next_obs[..., 0], next_obs[..., 2]
    return (jnp.abs(x) > X_THRESHOLD) | (jnp.abs(th) > THETA_THRESHOLD)


class CartpoleBalance(PureJaxTask):
    q_size = 4
    obs_size = 4
    dt = 0.02
    default_episode_length = DEFAULT_EPISODE_LENGTH
    action_scale = 10.0  # force_mag

    def init_q(self, key: jax.Array) -> jax.Array:
        return jax.random.uniform(key, (4,), minval=-0.05, maxval=0.05)

    def dynamics(self, q: jax.Array, u: jax.Array) -> jax.Array:
        gravity, m_cart, m_pole, half_len = 9.8, 1.0, 0.1, 0.5
        total = m_cart + m_pole
        x, xdot, th, thdot = q[0], q[1], q[2], q[3]
        cos, sin = jnp.cos(th), jnp.sin(th)
        temp = (u[0] + m_pole * half_len * thdot**2 * sin) / total
        th_acc = (gravity * sin - cos * temp) / (half_len * (4.0 / 3.0 - m_pole * cos**2 / total))
        x_acc = temp - m_pole * half_len * th_acc * cos / total
        # gym's "euler" integrator: positions advance with the old velocities.
        dt = self.dt
        return jnp.stack([x + dt * xdot, xdot + dt * x_acc, th + dt * thdot, thdot + dt * th_acc])

    def observe(self, q: jax.Array) -> jax.Array:
        return q

    def reward(self, q: jax.Array, u: jax.Array, q_next: jax.Array) -> jax.Array:
        return jnp.ones((), jnp.float32)

    def terminated(self, q_next: jax.Array) -> jax.Array:
        return (q_next[0] < -X_THRESHOLD) | (q_next[0] > X_THRESHOLD) | (
            q_next[2] < -THETA_THRESHOLD
        ) | (q_next[2] > THETA_THRESHOLD)
