"""The tasks PILCO knows: how an env's observation splits into plain state variables and
angles, its start distribution, and the saturating cost's target (a `TaskSpec`)."""

from __future__ import annotations

import math

from mbjax.agents.pilco.propagation import TaskSpec
from mbjax.envs.tasks.cartpole_swingup import POLE_LENGTH

# cartpole_swingup: obs [x, sin th, cos th, xdot, thdot] -> z [x, xdot, thdot, th]; features
# [x, xdot, thdot, sin, cos]; the cost is on the pole tip (x + l sin th, l cos th) against the
# upright target (0, l) (PILCO's cart-pole cost); start th = pi + N(0, 0.1^2), the rest N(0, 0.1^2).
TASKS: dict[str, TaskSpec] = {
    "cartpole_swingup": TaskSpec(
        plain=(0, 3, 4), angles=((1, 2),),
        init_mean=(0.0, 0.0, 0.0, math.pi), init_std=(0.1, 0.1, 0.1, 0.1),
        cost_map=((1.0, 0.0, 0.0, POLE_LENGTH, 0.0), (0.0, 0.0, 0.0, 0.0, POLE_LENGTH)),
        cost_target=(0.0, POLE_LENGTH)),
}


def task_spec(env: str) -> TaskSpec:
    """The TaskSpec of `env` (one-line ValueError naming the supported envs)."""
    if env not in TASKS:
        raise ValueError(f"pilco has no task description for env {env}; supported: "
                         f"{', '.join(TASKS)} (add a TaskSpec to mbjax.agents.pilco.tasks)")
    return TASKS[env]
