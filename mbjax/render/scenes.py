"""2-D scenes of mbjax's own tasks: physical state q -> `Shapes` in a fixed, task-specific view.

Each scene reads the task's state layout (see mbjax/envs/tasks/):
  cartpole_swingup  q = [x, th, xdot, thdot]   pole 0.6 m, th = 0 upright, cart range +-2.5 m
  cartpole_balance  q = [x, xdot, th, thdot]   pole 1.0 m (half-length 0.5), |x| <= 2.4
  pendulum_swingup  q = [th, thdot]            rod 1.0 m from a fixed pivot, th = 0 upright
  point_mass        q = [x, v]                 1-D mass on a line, goal at `task.goal`
In every scene a positive angle tilts the pole's tip to the right (tip = pivot + l (sin, cos)),
the same convention as the tasks' reward functions.

The views are fixed cameras wide enough that every reachable position stays in the image (a
moving camera would hide the cart's position, which the reward depends on), so the cart-poles'
widths are drawn larger than their physical capsules: at 64 px a 0.1 m capsule of a 5.2 m view
would be about one pixel.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from mbjax.render.raster import Shapes, View, capsule, concat, shape

BACKGROUND = (0.92, 0.93, 0.95)
RAIL = (0.45, 0.45, 0.50)
CART = (0.20, 0.40, 0.80)
POLE = (0.85, 0.55, 0.20)
HINGE = (0.15, 0.15, 0.15)
TARGET = (0.20, 0.70, 0.30)
MASS = (0.80, 0.20, 0.20)


class Scene(NamedTuple):
    """view: the world window; static: shapes that never move (rasterized once, as the
    background of every frame, so a frame only pays for the moving shapes); draw(q) -> the moving
    Shapes (pure, jittable), drawn over the static ones; background: [3] RGB behind everything."""

    view: View
    static: Shapes
    draw: Callable[[jax.Array], Shapes]
    background: tuple = BACKGROUND


def _rail(track: float, target_height: float | None) -> Shapes:
    """Rail with end stops at +-track, and a target ring where the upright tip belongs."""
    parts = [
        shape((0.0, 0.0), RAIL, half=(track, 0.015)),
        shape((-track, 0.0), RAIL, half=(0.02, 0.12)),
        shape((track, 0.0), RAIL, half=(0.02, 0.12)),
    ]
    if target_height is not None:
        parts.append(shape((0.0, target_height), TARGET, radius=0.1, shell=0.025))
    return concat(parts)


def _cart_pole(x, th, pole_length, cart_half, pole_radius) -> Shapes:
    """Cart centred at (x, 0), pole hinged there at angle th, hinge dot."""
    hinge = jnp.stack([x, jnp.zeros_like(x)])
    tip = hinge + pole_length * jnp.stack([jnp.sin(th), jnp.cos(th)])
    return concat([
        shape(hinge, CART, half=cart_half, radius=0.03),
        capsule(hinge, tip, pole_radius, POLE),
        shape(hinge, HINGE, radius=0.045),
    ])


def cartpole_swingup_scene(task: Any) -> Scene:
    from mbjax.envs.tasks.cartpole_swingup import CART_RANGE, POLE_LENGTH

    def draw(q):
        return _cart_pole(q[0], q[1], POLE_LENGTH, (0.25, 0.13), 0.08)

    del task
    return Scene(View(0.0, 0.0, 2.0 * CART_RANGE + 0.2), _rail(CART_RANGE, POLE_LENGTH), draw)


def cartpole_balance_scene(task: Any) -> Scene:
    from mbjax.envs.tasks.cartpole_balance import X_THRESHOLD

    def draw(q):
        return _cart_pole(q[0], q[2], 1.0, (0.25, 0.12), 0.06)

    del task
    # Raised centre: the pole stays within 12 degrees of upright, nothing hangs below the rail.
    return Scene(View(0.0, 0.45, 2.0 * X_THRESHOLD + 0.4), _rail(X_THRESHOLD, None), draw)


def pendulum_swingup_scene(task: Any) -> Scene:
    def draw(q):
        th = q[0]
        tip = jnp.stack([jnp.sin(th), jnp.cos(th)])
        return concat([
            capsule(jnp.zeros(2), tip, 0.08, POLE),
            shape((0.0, 0.0), HINGE, radius=0.05),
        ])

    del task
    target = shape((0.0, 1.0), TARGET, radius=0.09, shell=0.02)
    return Scene(View(0.0, 0.0, 2.5), target, draw)


def point_mass_scene(task: Any) -> Scene:
    goal = float(task.goal)
    # The start (~0) and the goal in view with a margin of at least 1.5 on each side.
    lo, hi = min(0.0, goal) - 1.5, max(0.0, goal) + 1.5

    def draw(q):
        return shape(jnp.stack([q[0], jnp.zeros_like(q[0])]), MASS, radius=0.13)

    static = concat([
        shape((0.5 * (lo + hi), 0.0), RAIL, half=(0.5 * (hi - lo), 0.012)),
        shape((goal, 0.0), TARGET, radius=0.18, shell=0.03),
    ])
    return Scene(View(0.5 * (lo + hi), 0.0, hi - lo), static, draw)


# Own task class name -> scene factory(task).
SCENES: dict[str, Callable[[Any], Scene]] = {
    "CartpoleSwingup": cartpole_swingup_scene,
    "CartpoleBalance": cartpole_balance_scene,
    "PendulumSwingup": pendulum_swingup_scene,
    "PointMass": point_mass_scene,
}
