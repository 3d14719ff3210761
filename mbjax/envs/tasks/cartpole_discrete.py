"""`cartpole_discrete`: CartPole-v1 (gym/gymnasium) in JAX, two actions.

Dynamics of `cartpole_balance` (explicit Euler, tau 0.02, g 9.8, cart 1.0 kg, pole 0.1 kg,
half-length 0.5) with force -10 N (action 0) or +10 N (action 1). obs = [x, xdot, th, thdot]
float32 [4], start ~ U(-0.05, 0.05)^4, reward 1 for every step (the terminating one included),
terminates when |th| > 12 deg or |x| > 2.4; 500-step episodes (v1's limit).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mbjax.envs.base import State
from mbjax.envs.discrete import DiscreteEnv
from mbjax.envs.tasks.cartpole_balance import CartpoleBalance


class CartpoleDiscrete(DiscreteEnv):
    num_actions = 2
    name = "cartpole_discrete"
    default_episode_length = 500

    def __init__(self):
        self._physics = CartpoleBalance()

    def reset(self, rng: jax.Array) -> State:
        q = self._physics.init_q(rng).astype(jnp.float32)
        zero = jnp.zeros((), jnp.float32)
        return State(pipeline_state=q, obs=q, reward=zero, done=zero)

    def step(self, state: State, action: jax.Array) -> State:
        force = jnp.where(jnp.asarray(action) == 1, 10.0, -10.0)[None]
        q = self._physics.dynamics(state.pipeline_state, force)
        done = self._physics.terminated(q).astype(jnp.float32)
        return state.replace(pipeline_state=q, obs=q, reward=jnp.ones((), jnp.float32), done=done)

    @property
    def observation_size(self) -> int:
        return 4
