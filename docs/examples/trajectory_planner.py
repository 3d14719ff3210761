"""Worked example: a planner that uses a problem's dynamics and reward (docs/architecture.md).

Sampling planners only call `problem.objective`. This one is the skeleton an LQR-type planner
(iLQR, DDP) fills in: it rolls the problem's deterministic `step` along the horizon, sums its
per-step `reward`, and takes Adam steps on the action sequence through that differentiable
rollout. It follows the same `init / plan / shift` protocol as every planner, so MPC loops,
`vmap` over envs and warm starts work unchanged.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from mbjax import validation
from mbjax.planners import base


@struct.dataclass
class TrajectoryHParams:
    learning_rate: jax.Array


@dataclasses.dataclass(frozen=True)
class TrajectoryConfig:
    """horizon: H (static); steps: Adam steps per plan; learning_rate: a leaf of the state."""

    horizon: int = 10
    steps: int = 30
    learning_rate: float = 0.1

    def __post_init__(self) -> None:
        validation.field_int(self, "horizon")
        validation.field_int(self, "steps")
        validation.field_float(self, "learning_rate", 0.0, lo_open=True)


def trajectory_return(problem: Any, actions: jax.Array) -> jax.Array:
    """Sum of problem.reward along the rollout of problem.step from problem.x0; actions [H, A]."""

    def step(x, action):
        next_x = problem.step(x, action)
        return next_x, problem.reward(x, action, next_x)

    _, rewards = jax.lax.scan(step, problem.x0, actions)
    return jnp.sum(rewards)


def make_trajectory_planner(config: TrajectoryConfig) -> base.Planner:
    cfg = config

    def plan(state: base.PlannerState, problem: Any, obs: Any, key: jax.Array):
        del obs, key
        mean = base.warm_mean(state, cfg.horizon)
        opt = optax.adam(state.hparams.learning_rate)
        loss = lambda z: -trajectory_return(problem, jnp.tanh(z))  # noqa: E731
        z0 = jnp.arctanh(jnp.clip(mean, -0.999, 0.999))

        def adam_step(carry, _):
            z, opt_state = carry
            updates, opt_state = opt.update(jax.grad(loss)(z), opt_state, z)
            return (optax.apply_updates(z, updates), opt_state), None

        (z, _), _ = jax.lax.scan(adam_step, (z0, opt.init(z0)), None, length=cfg.steps)
        actions = jnp.tanh(z)
        info = {"best_return": -loss(z)}
        return actions, state.replace(mean=actions), info

    return base.Planner(
        init=base.make_init(cfg.horizon, 0.5, TrajectoryHParams(cfg.learning_rate)),
        plan=plan,
        shift=base.make_state_shift(0.5),
    )
