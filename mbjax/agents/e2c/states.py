"""E2C's training data from uniformly sampled states (Watter et al. 2015, section 5: the
(x_t, u_t, x_{t+1}) triples are generated from states sampled uniformly over the state space,
with random actions), and the true distance to the goal for checking the latent cost.

A random-action episode of a swing-up task starts hanging down and never shows the upright
images, so the goal image's latent would be an extrapolation; sampling the physical state q
uniformly from `STATE_BOXES` covers it. The env is the ordinary pixel env (`make(...,
pixels=True)`): a state is started at q by replacing the reset state's `pipeline_state` (the own
tasks' physical state vector, `PureJaxTask`), its observation (q rendered in every frame slot by
`env.render_fn`) and `info['state_obs']`; then `frame_stack - 1` random warm-up actions fill the
frame stack with a motion the dynamics produced (the velocity is visible, as in a real
episode), and one more random action gives the recorded triple. Everything goes through the
env's own `step` (action repeat, wrappers). Nothing is added to the env layer.

Shapes: N triples; q [q_size]; obs uint8 [H, W, C].
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from mbjax import acting

TWO_PI = 2.0 * jnp.pi

# (low, high) of the uniform box over q of each task e2c supports (angles th = 0 upright).
STATE_BOXES: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    # q = [th, thdot]: every angle; |thdot| <= 8 is the task's speed limit (a swing-up from
    # rest hanging down passes the bottom at ~7.7 rad/s).
    "pendulum_swingup": ((-jnp.pi, -8.0), (jnp.pi, 8.0)),
    # q = [x, th, xdot, thdot].
    "cartpole_swingup": ((-2.0, -jnp.pi, -2.0, -6.0), (2.0, jnp.pi, 2.0, 6.0)),
    "cartpole_balance": ((-1.0, -0.3, -1.0, -1.0), (1.0, 0.3, 1.0, 1.0)),
    # q = [x, v].
    "point_mass": ((-2.0, -1.0), (2.0, 1.0)),
}


def _wrapped(angle: jax.Array) -> jax.Array:
    return jnp.mod(angle + jnp.pi, TWO_PI) - jnp.pi


# The true distance of q to the task's goal state that the latent cost should track: the
# pole's angle for the pendulum and the cart-poles, the position for the point mass.
GOAL_ERRORS: dict[str, Callable[[Any, jax.Array], jax.Array]] = {
    "pendulum_swingup": lambda task, q: jnp.abs(_wrapped(q[..., 0])),
    "cartpole_swingup": lambda task, q: jnp.abs(_wrapped(q[..., 1])),
    "cartpole_balance": lambda task, q: jnp.abs(_wrapped(q[..., 1])),
    "point_mass": lambda task, q: jnp.abs(q[..., 0] - task.goal),
}


def sample_state(env_name: str, key: jax.Array) -> jax.Array:
    """q [q_size] uniform in `STATE_BOXES[env_name]`."""
    low, high = (jnp.asarray(b, jnp.float32) for b in STATE_BOXES[env_name])
    return jax.random.uniform(key, low.shape, minval=low, maxval=high)


def start_at(env: Any, key: jax.Array, q: jax.Array) -> Any:
    """The pixel env's state with physical state q (every frame slot q's image)."""
    state = env.reset(key)
    obs = jnp.tile(env.render_fn(q), (1, 1, env.frame_stack))
    return state.replace(pipeline_state=q, obs=obs,
                         info={**state.info, "state_obs": env.unwrapped.observe(q)})


def uniform_triple(env: Any, env_name: str, key: jax.Array) -> tuple[acting.Transition,
                                                                     jax.Array]:
    """One triple from a uniformly sampled state (module docstring): (Transition with obs x_t,
    a random action u_t, next_obs x_{t+1}; q_t [q_size], the physical state x_t shows last)."""
    k_q, k_reset, k_act = jax.random.split(key, 3)
    actions = acting.random_actions(k_act, (env.frame_stack, env.action_size))
    state = start_at(env, k_reset, sample_state(env_name, k_q))
    state = jax.lax.fori_loop(0, env.frame_stack - 1,
                              lambda i, s: env.step(s, actions[i]), state)
    q_t = state.pipeline_state
    next_state, transition = acting.step(env, state, actions[-1])
    del next_state
    return transition, q_t


def uniform_triples(env: Any, env_name: str, key: jax.Array, n: int
                    ) -> tuple[acting.Transition, jax.Array]:
    """n triples (leaves [n, ...]) and their states q_t [n, q_size] (vmapped)."""
    return jax.vmap(lambda k: uniform_triple(env, env_name, k))(jax.random.split(key, n))


def goal_error(env: Any, env_name: str, q: jax.Array) -> jax.Array:
    """The true distance to the goal of states q [..., q_size]: [...] (`GOAL_ERRORS`)."""
    return GOAL_ERRORS[env_name](env.unwrapped, q)


def correlation(a: jax.Array, b: jax.Array) -> jax.Array:
    """Pearson correlation of two [N] samples: []."""
    a, b = a - jnp.mean(a), b - jnp.mean(b)
    return jnp.sum(a * b) / jnp.maximum(jnp.sqrt(jnp.sum(a**2) * jnp.sum(b**2)), 1e-12)
