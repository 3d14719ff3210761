"""Environments: one registry and one protocol for Brax, MuJoCo Playground (DM Control) and
mbjax's own pure-JAX tasks, plus reward/termination functions for planning.

    env = mbjax.envs.make("cartpole_swingup")          # or "brax/hopper", "dmc/CheetahRun"
    state = env.step(env.reset(key), action)           # Brax Env protocol, actions in [-1, 1]
    fns = mbjax.envs.task_fns("cartpole_swingup")      # reward_fn(obs, action, next_obs), ...
    reward_fn, termination_fn = mbjax.envs.resolve_task("brax/hopper", True, False)

Importing this package does not import Brax or Playground; `make` does, for those families.
"""

from mbjax.envs.base import Env, State, Wrapper
from mbjax.envs.pixels import PixelWrapper
from mbjax.envs.registry import (
    BRAX_BACKENDS,
    BRAX_ENVS,
    DMC_ENVS,
    DMC_IMPLS,
    OWN_TASKS,
    check_name,
    make,
    names,
)
from mbjax.envs.task_fns import (
    TASK_TABLE,
    TaskFns,
    describe,
    pendulum_swingup_task_fns,
    resolve_task,
    task_fns,
    task_names,
)

__all__ = [
    "BRAX_BACKENDS", "BRAX_ENVS", "DMC_ENVS", "DMC_IMPLS", "OWN_TASKS", "TASK_TABLE", "Env",
    "PixelWrapper", "State", "TaskFns", "Wrapper", "check_name", "describe", "make", "names",
    "pendulum_swingup_task_fns", "resolve_task", "task_fns", "task_names",
]
