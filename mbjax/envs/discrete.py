"""The discrete-action protocol: `num_actions` and integer actions.

A discrete env keeps the Brax `Env` interface (`reset(key) -> State`, `step(state, action) ->
State` with `obs / reward [] / done [] / info`) but its action is one int32 scalar `[]` in
`[0, num_actions)` and it has `num_actions` instead of `action_size` (reading `action_size`
raises a one-line ValueError, so a continuous-action learner fails clearly). Tabular envs (the
mazes) also have `num_states` S, and their `obs` is the int32 state index `[]`.

`restart(state, key) -> State` starts a new episode in the same world: for the changing mazes
(blocking, shortcut) the wall changes after a number of steps of the whole run, not of an
episode, so the world's clock carries over; for the other tasks it is `reset(key)`.

`DiscreteEpisodeWrapper` is what `mbjax.envs.make` puts around a discrete task: it checks the
action's shape (`[]`, at trace time), clips it into `[0, num_actions)`, enforces the time limit
and sets `info['steps']` / `info['truncation']` with the same meaning as `EpisodeWrapper`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from mbjax import validation
from mbjax.envs.base import Env, Wrapper


def is_discrete(env: Any) -> bool:
    """True for an env with integer actions (`num_actions`)."""
    return isinstance(getattr(env, "num_actions", None), int)


def require_continuous(env: Any, env_name: str, algo: str) -> Any:
    """`env` itself, or the one-line error of a learner `algo` that needs continuous actions."""
    if is_discrete(env):
        raise ValueError(f"env {env_name} has discrete actions; {algo} needs continuous actions")
    return env


def continuous_action_error(env_name: str, num_actions: int) -> ValueError:
    return ValueError(
        f"env {env_name} has discrete actions (num_actions={num_actions}, integer actions); "
        "this learner needs a continuous env with action_size (use --algo=dyna_q for "
        "maze/*, or a continuous env such as point_mass)"
    )


class DiscreteEnv(Env):
    """Base of discrete-action tasks: subclasses set `num_actions`, `name` and implement
    `reset` / `step` (action: int32 `[]`)."""

    num_actions: int
    name: str = "discrete env"
    default_episode_length: int = 500

    @property
    def action_size(self) -> int:
        raise continuous_action_error(self.name, self.num_actions)

    def restart(self, state: Any, rng: jax.Array) -> Any:
        """A new episode in the same world (default: `reset(rng)`)."""
        del state
        return self.reset(rng)


def check_discrete_action(action: Any) -> None:
    shape = tuple(jnp.shape(action))
    if shape != ():
        raise validation.invalid(
            "env.step: action.shape", shape,
            "(), one integer action of a discrete env (step a batch with jax.vmap(env.step))",
        )


class DiscreteEpisodeWrapper(Wrapper):
    """Time limit and action checks for a discrete env (see the module docstring)."""

    def __init__(self, env: Any, episode_length: int):
        super().__init__(env)
        validation.check_int("DiscreteEpisodeWrapper: episode_length", episode_length)
        self.episode_length = int(episode_length)
        self.action_repeat = 1

    @property
    def action_size(self) -> int:
        raise continuous_action_error(self.env.name, self.env.num_actions)

    def _start(self, state: Any) -> Any:
        zero = jnp.zeros((), jnp.float32)
        info = dict(state.info)
        info["steps"] = zero
        info["truncation"] = zero
        return state.replace(reward=jnp.asarray(state.reward, jnp.float32),
                             done=jnp.asarray(state.done, jnp.float32), info=info)

    def reset(self, rng: jax.Array) -> Any:
        return self._start(self.env.reset(rng))

    def restart(self, state: Any, rng: jax.Array) -> Any:
        return self._start(self.env.restart(state, rng))

    def step(self, state: Any, action: jax.Array) -> Any:
        """One step; action: int `[]` (a batch: `jax.vmap(env.step)`)."""
        check_discrete_action(action)
        action = jnp.clip(jnp.asarray(action, jnp.int32), 0, self.env.num_actions - 1)
        state = self.env.step(state, action)
        terminated = jnp.asarray(state.done, jnp.float32)
        steps = state.info["steps"] + 1.0
        time_up = (steps >= self.episode_length).astype(jnp.float32)
        info = dict(state.info)
        info["steps"] = steps
        info["truncation"] = time_up * (1.0 - terminated)
        return state.replace(reward=jnp.asarray(state.reward, jnp.float32),
                             done=jnp.maximum(terminated, time_up), info=info)
