"""The true dynamics of mbjax's own pure-JAX tasks behind the dynamics-model protocol.

`make_true_model(env)` returns a model whose `step` is the task's exact, differentiable physics
(`PureJaxTask.dynamics`, `reward`, `terminated`), so `imagine`, BPTT and MAAC run on the true env
unchanged: the ground-truth counterpart of a learned model, as `make_env_problem` is for
planners. The model's x is the observation (what a policy sees and replay stores); the physical
state q is recovered from it by the task's exact inverse below (the own tasks observe q or
(sin, cos) of an angle). Brax / DM Control envs have no such inverse of their observation and are
refused; planners reach them through `make_env_problem`, which steps env States instead.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from mbjax import validation
from mbjax.models.state import ModelStep


def _identity(obs: jax.Array) -> jax.Array:
    return obs


def _pendulum(obs: jax.Array) -> jax.Array:  # [cos th, sin th, thdot] -> [th, thdot]
    return jnp.stack([jnp.arctan2(obs[1], obs[0]), obs[2]])


def _cartpole_swingup(obs: jax.Array) -> jax.Array:  # [x, sin, cos, xdot, thdot] -> q
    return jnp.stack([obs[0], jnp.arctan2(obs[1], obs[2]), obs[3], obs[4]])


# Own task class name -> q = state_from_obs(obs) for one observation (th only up to 2 pi, which
# the dynamics and rewards do not see).
_STATE_FROM_OBS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "PendulumSwingup": _pendulum,
    "CartpoleSwingup": _cartpole_swingup,
    "CartpoleBalance": _identity,
    "PointMass": _identity,
}


def supports_true_model(env: Any) -> bool:
    """Whether `make_true_model(env)` works: an own pure-JAX task with a known inverse."""
    return type(env.unwrapped).__name__ in _STATE_FROM_OBS


class TrueModel(NamedTuple):
    """A one-member, stateless protocol model: x [S] = the task's observation."""

    task: Any  # the unwrapped PureJaxTask
    state_from_obs: Callable[[jax.Array], jax.Array]
    state_size: int
    action_size: int
    num_members: int = 1
    num_elites: int = 1
    has_reward: bool = True
    has_termination: bool = True

    def init(self, key: jax.Array) -> tuple:
        del key
        return ()

    def fit(self, state: tuple, data: Any, key: jax.Array) -> tuple[tuple, dict]:
        """Nothing to learn: the protocol's fit scalars, zero."""
        del data, key
        zero = jnp.zeros((), jnp.float32)
        return state, {"train_loss": zero, "holdout_loss": zero,
                       "nonfinite": jnp.zeros((), bool)}

    def step(self, state: tuple, x: jax.Array, action: jax.Array, key: jax.Array | None = None,
             members: jax.Array | None = None) -> ModelStep:
        """x [M, R, S], action [M, R, A] -> ModelStep [M, R] (deterministic: key ignored)."""
        del state, key, members
        task = self.task

        def one(obs: jax.Array, a: jax.Array):
            q = self.state_from_obs(obs)
            u = task.action_scale * jnp.clip(a, -1.0, 1.0)
            q_next = task.dynamics(q, u)
            return (task.observe(q_next).astype(obs.dtype),
                    jnp.asarray(task.reward(q, u, q_next), obs.dtype),
                    jnp.asarray(task.terminated(q_next), obs.dtype))

        lead = x.shape[:-1]
        flat = jax.vmap(one)(x.reshape((-1, x.shape[-1])),
                             action.reshape((-1, action.shape[-1])))
        next_obs, reward, done = (v.reshape(lead + v.shape[1:]) for v in flat)
        return ModelStep(next_obs=next_obs, reward=reward, termination_prob=done)

    def elites(self, state: tuple) -> jax.Array:
        del state
        return jnp.zeros((1,), jnp.int32)


def make_true_model(env: Any) -> TrueModel:
    """The exact model of `env` (an `mbjax.envs.make` own task, action_repeat 1); a one-line
    ValueError for any other env."""
    task = env.unwrapped
    name = type(task).__name__
    if name not in _STATE_FROM_OBS:
        raise validation.invalid(
            "true model: env", name,
            f"one of mbjax's own tasks ({', '.join(sorted(_STATE_FROM_OBS))}); other envs "
            "have no differentiable step from observations",
        )
    if getattr(env, "action_repeat", 1) != 1:
        raise validation.invalid("true model: action_repeat", env.action_repeat, "1")
    return TrueModel(task=task, state_from_obs=_STATE_FROM_OBS[name],
                     state_size=int(env.observation_size), action_size=int(env.action_size))
