"""Control in E2C's latent space: iLQR-MPC towards the encoding of a goal image (Watter et al.
2015, section 4: the locally linear latent dynamics and a quadratic latent cost are what iLQR /
AICO need).

The planning problem (`mbjax.rollout.problem.PlanningProblem`) has x0 = mu(x_t), the encoder's
mean, step(z, u) = A(z) z + B(z) u + o(z) (`model.mean_step`) and reward(z, u, z') =
-(state_cost |z' - z_goal|^2 + action_cost |u|^2); `mbjax.planners.ilqr` plans it (its jacfwd of
the step at z is exactly [A(z) + (dA/dz) z + ..., B(z)]: the B block is the network's B). MPC
replans every step from the shifted warm start of the previous plan.

The goal image is the task's goal state rendered with the env's own renderer (`PixelWrapper
.render_fn`), the same frame in every slot of the stack (at rest): `GOAL_STATES`.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from mbjax.agents.e2c import model as model_lib
from mbjax.planners import make_planner
from mbjax.rollout.problem import PlanningProblem

# The physical goal state q of each renderable own task (th = 0 is upright).
GOAL_STATES: dict[str, Callable[[Any], jax.Array]] = {
    "pendulum_swingup": lambda task: jnp.zeros(2),
    "cartpole_swingup": lambda task: jnp.zeros(4),
    "cartpole_balance": lambda task: jnp.zeros(4),
    "point_mass": lambda task: jnp.array([task.goal, 0.0]),
}


class Costs(NamedTuple):
    """The latent cost weights, float32 [] leaves (grid axes)."""

    state_cost: jax.Array
    action_cost: jax.Array


def goal_observation(env: Any, env_name: str) -> jax.Array:
    """uint8 [H, W, 3 * frame_stack]: the goal state rendered, repeated in every frame slot."""
    q = GOAL_STATES[env_name](env.unwrapped)
    frame = env.render_fn(q)
    return jnp.tile(frame, (1, 1, env.frame_stack))


def make_latent_problem(net: model_lib.E2CNet, params: Any, z0: jax.Array, z_goal: jax.Array,
                        costs: Costs) -> PlanningProblem:
    """The latent planning problem from z0 [n_z] towards z_goal [n_z] (module docstring)."""

    def step(z: jax.Array, u: jax.Array) -> jax.Array:
        return model_lib.mean_step(net, params, z, u)

    def reward(z: jax.Array, u: jax.Array, z_next: jax.Array) -> jax.Array:
        return -(costs.state_cost * jnp.sum((z_next - z_goal) ** 2)
                 + costs.action_cost * jnp.sum(u**2))

    def objective(actions: jax.Array) -> jax.Array:
        """actions [N, H, A] -> returns [N] (the same rollout iLQR scores)."""

        def one(u_seq: jax.Array) -> jax.Array:
            def body(z, u):
                z_next = step(z, u)
                return z_next, reward(z, u, z_next)

            return jnp.sum(jax.lax.scan(body, z0, u_seq)[1])

        return jax.vmap(one)(jnp.clip(actions, -1.0, 1.0))

    return PlanningProblem(objective=objective, x0=z0, step=step, reward=reward)


class Controller(NamedTuple):
    """act(params, planner_state, obs, z_goal, costs) -> (action [A], planner_state shifted,
    info): encode, plan, first action (not yet noised); `planner` is the iLQR bundle."""

    planner: Any
    act: Callable[..., tuple[jax.Array, Any, dict]]


def make_controller(net: model_lib.E2CNet, horizon: int, iterations: int) -> Controller:
    """Latent iLQR-MPC (clamped to [-1, 1]); `planner.init(action_size, key)` starts it."""
    planner = make_planner("ilqr", horizon=horizon, iterations=iterations)

    def act(params: Any, planner_state: Any, obs: jax.Array, z_goal: jax.Array,
            costs: Costs) -> tuple[jax.Array, Any, dict]:
        z0 = net.apply(params, obs, method=model_lib.E2CNet.encode).mean
        problem = make_latent_problem(net, params, z0, z_goal, costs)
        actions, planner_state, info = planner.plan(planner_state, problem, z0, None)
        return actions[0], planner.shift(planner_state, 1), info

    return Controller(planner, act)
