"""Wrappers every `mbjax.envs.make` environment goes through.

`EpisodeWrapper` gives all families the same step semantics:
  * an action must have shape [action_size] (checked at trace time: a wrong shape raises a
    one-line ValueError instead of being broadcast or cut; a batch goes through `jax.vmap`);
  * actions are clipped to [-1, 1] before the wrapped env sees them;
  * `action_repeat` steps the wrapped env that many times with the same action and sums the rewards,
    stopping early (no more reward, state frozen) once the env terminates inside the repeat;
  * `episode_length` is counted in wrapped-env steps, as in Brax (so an episode has
    ceil(episode_length / action_repeat) agent steps);
  * `state.done` = 1 on termination OR time-limit truncation (Brax semantics) and
    `state.info['truncation']` = 1 only for a time-limit end, so
    termination = done * (1 - truncation);
  * `reward` and `done` are float32 scalars; `state.info['steps']` counts wrapped-env steps.

`PlaygroundToBrax` adapts a MuJoCo Playground `MjxEnv` (whose `State` has `data` instead of
`pipeline_state`) to Brax's `State` so that every env has one protocol.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from mbjax import validation
from mbjax.envs.base import Wrapper


def check_action_shape(action: Any, action_size: int) -> None:
    """Raises a one-line ValueError unless `action` has shape (action_size,).

    Checked on the (static) shape, so it costs nothing at run time. Without it a (4,) action of a
    1-D env would be cut to its first entry and a (1, 1) one would broadcast the observation.
    """
    shape = tuple(jnp.shape(action))
    if shape != (action_size,):
        raise validation.invalid(
            "env.step: action.shape", shape,
            f"({action_size},), one action of this env's action_size={action_size} "
            "(step a batch with jax.vmap(env.step))",
        )


class EpisodeWrapper(Wrapper):
    """Clip actions, repeat them, enforce a time limit, keep termination apart from truncation."""

    def __init__(self, env: Any, episode_length: int, action_repeat: int = 1):
        super().__init__(env)
        validation.check_int("EpisodeWrapper: episode_length", episode_length)
        validation.check_int("EpisodeWrapper: action_repeat", action_repeat)
        self.episode_length = int(episode_length)
        self.action_repeat = int(action_repeat)

    def reset(self, rng: jax.Array) -> Any:
        state = self.env.reset(rng)
        reward = jnp.asarray(state.reward, jnp.float32)
        zero = jnp.zeros_like(reward)
        info = dict(state.info)
        info["steps"] = zero
        info["truncation"] = zero
        return state.replace(reward=reward, done=jnp.asarray(state.done, jnp.float32), info=info)

    def step(self, state: Any, action: jax.Array) -> Any:
        """One agent step; action: [action_size] (a batch: `jax.vmap(env.step)`)."""
        check_action_shape(action, self.action_size)
        action = jnp.clip(action, -1.0, 1.0)
        if self.action_repeat == 1:
            state = self.env.step(state, action)
            reward = jnp.asarray(state.reward, jnp.float32)
            terminated = jnp.asarray(state.done, jnp.float32)
        else:
            state, reward, terminated = self._repeat(state, action)
        steps = state.info["steps"] + self.action_repeat
        time_up = (steps >= self.episode_length).astype(jnp.float32)
        info = dict(state.info)
        info["steps"] = steps
        info["truncation"] = time_up * (1.0 - terminated)
        done = jnp.maximum(terminated, time_up)
        return state.replace(reward=reward, done=done, info=info)

    def _repeat(self, state: Any, action: jax.Array) -> tuple[Any, jax.Array, jax.Array]:
        def one(carry, _):
            state, total, terminated = carry
            nstate = self.env.step(state, action)
            # Once terminated inside the repeat, freeze the state and stop adding reward.
            keep = terminated > 0
            state = jax.tree.map(lambda old, new: jnp.where(keep, old, new), state, nstate)
            total = total + (1.0 - terminated) * jnp.asarray(nstate.reward, jnp.float32)
            terminated = jnp.maximum(terminated, jnp.asarray(nstate.done, jnp.float32))
            return (state, total, terminated), None

        zero = jnp.zeros_like(jnp.asarray(state.reward, jnp.float32))
        # Entering with done=1 from a previous episode must not freeze this one.
        init = (state, zero, zero)
        (state, total, terminated), _ = jax.lax.scan(one, init, None, length=self.action_repeat)
        return state, total, terminated


class PlaygroundToBrax(Wrapper):
    """Presents a MuJoCo Playground env as a Brax env: `State(pipeline_state=data, ...)`."""

    def __init__(self, env: Any, impl: str):
        super().__init__(env)
        self.impl = impl

    def reset(self, rng: jax.Array) -> Any:
        from brax.envs.base import State

        s = self.env.reset(rng)
        return State(
            pipeline_state=s.data, obs=s.obs, reward=s.reward, done=s.done,
            metrics=dict(s.metrics), info=dict(s.info),
        )

    def step(self, state: Any, action: jax.Array) -> Any:
        from mujoco_playground import State as PlaygroundState

        inner = PlaygroundState(
            data=state.pipeline_state, obs=state.obs, reward=state.reward, done=state.done,
            metrics=dict(state.metrics), info=dict(state.info),
        )
        s = self.env.step(inner, action)
        # Playground's step may return its own `info` dict; keep keys added by outer wrappers.
        info = {**state.info, **s.info}
        return state.replace(
            pipeline_state=s.data, obs=s.obs, reward=s.reward, done=s.done,
            metrics=dict(s.metrics), info=info,
        )

    @property
    def backend(self) -> str:
        return "mjx" if self.impl == "jax" else self.impl

    @property
    def dt(self) -> float:
        return float(self.env.dt)
