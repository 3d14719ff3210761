"""`cartpole_swingup`: the PETS (Chua et al. 2018, "handful of trials") cart-pole swing-up.

Physics re-derived in closed form from the PETS MuJoCo model: a 0.6 m capsule pole (radius 0.049)
hinged on a capsule cart (radius 0.1, half-length 0.1), density 1000 (so cart ~10.47 kg,
pole ~5.02 kg, pole COM 0.3 m from the hinge), viscous damping 1 on both joints, g = 9.81, motor
gear 100 with control range [-3, 3] (so the force is 300 * a N for a in [-1, 1]), RK4 with a 0.02 s
step and 2 sub-steps per control step (dt = 0.04 s), cart range +-2.5 m (a hard stop here; MuJoCo
uses a soft limit). th = 0 is upright; the episode starts hanging down: th = pi + N(0, 0.1^2),
x, xdot, thdot ~ N(0, 0.1^2). 200-step episodes; never terminates.

obs = [x, sin th, cos th, xdot, thdot] (smooth in the angle).
Reward (PETS): exp(-|tip - target|^2 / l^2) - 0.01 * |u|^2 with tip = (x + l sin th, l cos th),
target = (0, l), l = 0.6 and u the native control in [-3, 3] (PETS penalises its native action).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from mbjax.envs.tasks.common import PureJaxTask

DEFAULT_EPISODE_LENGTH = 200
POLE_LENGTH = 0.6
CTRL_LIMIT = 3.0
GEAR = 100.0
ACTION_COST = 0.01
CART_RANGE = 2.5


def _capsule_mass(radius: float, length: float, density: float = 1000.0) -> float:
    return density * (math.pi * radius**2 * length + 4.0 / 3.0 * math.pi * radius**3)


def _capsule_inertia_perp(radius: float, length: float, density: float = 1000.0) -> float:
    """Moment of inertia of a capsule about a transverse axis through its centre."""
    m_cyl = density * math.pi * radius**2 * length
    m_caps = density * 4.0 / 3.0 * math.pi * radius**3
    return m_cyl * (length**2 / 12.0 + radius**2 / 4.0) + m_caps * (
        2.0 * radius**2 / 5.0 + length**2 / 4.0 + 3.0 * length * radius / 8.0
    )


M_CART = _capsule_mass(0.1, 0.2)
M_POLE = _capsule_mass(0.049, POLE_LENGTH)
POLE_COM = POLE_LENGTH / 2.0
POLE_INERTIA = _capsule_inertia_perp(0.049, POLE_LENGTH) + M_POLE * POLE_COM**2  # about the hinge
DAMPING = 1.0
GRAVITY = 9.81


def cartpole_swingup_reward(obs, action, next_obs, pole_length: float = POLE_LENGTH):
    """PETS reward from observations: next_obs [..., 5], action [..., 1] -> [...]."""
    del obs
    x, sin, cos = next_obs[..., 0], next_obs[..., 1], next_obs[..., 2]
    dist2 = (x + pole_length * sin) ** 2 + (pole_length * cos - pole_length) ** 2
    u = CTRL_LIMIT * jnp.clip(action, -1.0, 1.0)
    return jnp.exp(-dist2 / pole_length**2) - ACTION_COST * jnp.sum(u**2, axis=-1)


def _derivatives(q: jax.Array, force: jax.Array) -> jax.Array:
    """d/dt [x, th, xdot, thdot] from the Lagrangian of a cart with a hinged rigid pole."""
    _, th, xdot, thdot = q[0], q[1], q[2], q[3]
    sin, cos = jnp.sin(th), jnp.cos(th)
    c = M_POLE * POLE_COM * cos
    # [[M, c], [c, J]] @ [xdd, thdd] = rhs
    m11, m22 = M_CART + M_POLE, POLE_INERTIA
    r1 = force + M_POLE * POLE_COM * sin * thdot**2 - DAMPING * xdot
    r2 = M_POLE * GRAVITY * POLE_COM * sin - DAMPING * thdot
    det = m11 * m22 - c * c
    xdd = (m22 * r1 - c * r2) / det
    thdd = (m11 * r2 - c * r1) / det
    return jnp.stack([xdot, thdot, xdd, thdd])


class CartpoleSwingup(PureJaxTask):
    q_size = 4  # [x, th, xdot, thdot]
    obs_size = 5
    sim_dt = 0.02
    n_substeps = 2
    dt = sim_dt * n_substeps
    default_episode_length = DEFAULT_EPISODE_LENGTH
    action_scale = CTRL_LIMIT

    def init_q(self, key: jax.Array) -> jax.Array:
        return jnp.array([0.0, jnp.pi, 0.0, 0.0]) + 0.1 * jax.random.normal(key, (4,))

    def dynamics(self, q: jax.Array, u: jax.Array) -> jax.Array:
        force = GEAR * u[0]
        h = self.sim_dt

        def rk4(q, _):
            k1 = _derivatives(q, force)
            k2 = _derivatives(q + 0.5 * h * k1, force)
            k3 = _derivatives(q + 0.5 * h * k2, force)
            k4 = _derivatives(q + h * k3, force)
            q = q + h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
            # Cart range: a hard stop that also removes outward velocity.
            x = jnp.clip(q[0], -CART_RANGE, CART_RANGE)
            hit = x != q[0]
            xdot = jnp.where(hit & (jnp.sign(q[2]) == jnp.sign(q[0])), 0.0, q[2])
            return q.at[0].set(x).at[2].set(xdot), None

        q, _ = jax.lax.scan(rk4, q, None, length=self.n_substeps)
        return q

    def observe(self, q: jax.Array) -> jax.Array:
        return jnp.stack([q[0], jnp.sin(q[1]), jnp.cos(q[1]), q[2], q[3]])

    def reward(self, q: jax.Array, u: jax.Array, q_next: jax.Array) -> jax.Array:
        x, th = q_next[0], q_next[1]
        tip = jnp.stack([x + POLE_LENGTH * jnp.sin(th), POLE_LENGTH * jnp.cos(th)])
        target = jnp.array([0.0, POLE_LENGTH])
        dist2 = jnp.sum((tip - target) ** 2)
        return jnp.exp(-dist2 / POLE_LENGTH**2) - ACTION_COST * u[0] ** 2
