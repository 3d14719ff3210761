"""The environment protocol, without importing Brax.

mbjax follows Brax's `Env` protocol: `reset(key) -> State`, `step(state, action) -> State`,
`observation_size`, `action_size`, `backend`. Brax and Playground environments return
`brax.envs.base.State`; mbjax's own pure-JAX tasks return the `State` below, a field-for-field twin
of Brax's (`pipeline_state, obs, reward, done, metrics, info`), so that `import mbjax.envs` and the
small tasks stay free of the ~3 s Brax/MJX import. Brax's wrappers (`VmapWrapper`,
`AutoResetWrapper`, ...) only use attribute access and `.replace`, so they accept either class.
"""

from __future__ import annotations

import abc
from typing import Any

import jax
from flax import struct


@struct.dataclass
class State:
    """Environment state; same fields, order and defaults as `brax.envs.base.State`.

    pipeline_state: physics state (own tasks: a [q_dim] array), obs: [obs_dim],
    reward: [] float32, done: [] float32 (1 on termination or time-limit truncation),
    metrics: dict of [] arrays, info: dict (wrappers add 'steps' and 'truncation').
    """

    pipeline_state: Any
    obs: jax.Array
    reward: jax.Array
    done: jax.Array
    metrics: dict = struct.field(default_factory=dict)
    info: dict = struct.field(default_factory=dict)


class Env(abc.ABC):
    """Brax-style environment interface (unbatched; use `jax.vmap` for batches)."""

    @abc.abstractmethod
    def reset(self, rng: jax.Array) -> Any:
        """Returns the initial `State` for one environment from a PRNG key."""

    @abc.abstractmethod
    def step(self, state: Any, action: jax.Array) -> Any:
        """Advances one environment by one step; `action: [action_size]` in [-1, 1]."""

    @property
    @abc.abstractmethod
    def observation_size(self) -> int:
        """Length of the observation vector."""

    @property
    @abc.abstractmethod
    def action_size(self) -> int:
        """Length of the action vector."""

    @property
    def backend(self) -> str:
        """Name of the physics implementation."""
        return "jax"

    @property
    def unwrapped(self) -> "Env":
        return self


class Wrapper(Env):
    """Delegates everything to `env`; unknown attributes (e.g. `dt`, `sys`) pass through."""

    def __init__(self, env: Any):
        self.env = env

    def reset(self, rng: jax.Array) -> Any:
        return self.env.reset(rng)

    def step(self, state: Any, action: jax.Array) -> Any:
        return self.env.step(state, action)

    @property
    def observation_size(self) -> int:
        return self.env.observation_size

    @property
    def action_size(self) -> int:
        return self.env.action_size

    @property
    def backend(self) -> str:
        return self.env.backend

    @property
    def unwrapped(self) -> Any:
        return self.env.unwrapped

    def __getattr__(self, name: str) -> Any:
        if name == "env":  # not yet set (e.g. during unpickling): avoid infinite recursion
            raise AttributeError(name)
        return getattr(self.env, name)
