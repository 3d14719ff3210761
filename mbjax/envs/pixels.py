"""`PixelWrapper`: image observations rendered inside the env step (jit/vmap/scan-safe).

    env = mbjax.envs.make("cartpole_swingup", pixels=True, frame_stack=3, image_size=64,
                          action_repeat=4)
    state = env.reset(key)      # state.obs: uint8 [64, 64, 9]

Observation layout: uint8 [H, W, 3 * frame_stack], frames concatenated on the channel axis in time
order, oldest first and the newest LAST: `obs[..., 3*i : 3*i + 3]` is the RGB frame of agent step
t - (frame_stack - 1) + i, so `obs[..., -3:]` is the current frame. At reset every slot holds the
first frame (no black frames to learn around).

What stays as before: reward, done, `info['truncation']`/`info['steps']` and `pipeline_state` come
from the wrapped state env, so rewards are computed from the true state, never from pixels. The
wrapped env's vector observation is kept as `info['state_obs']` (proprioception / debugging).
Action repeat belongs to the wrapped `EpisodeWrapper` (`make(..., action_repeat=r)`), so a frame is
rendered once per agent step, after the repeat, and the stack holds agent steps.

Observations are uint8 so a replay buffer stores 1 byte per channel: build its example item with
`mbjax.acting.empty_transition(env.observation_size, A, obs_dtype=env.observation_dtype)`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from mbjax import validation
from mbjax.envs.base import Wrapper


class PixelWrapper(Wrapper):
    """Replaces `state.obs` by stacked uint8 frames [H, W, 3 * frame_stack] (see module doc)."""

    def __init__(self, env: Any, frame_stack: int = 1, image_size: int = 64, **render_kwargs: Any):
        from mbjax.render import make_renderer

        super().__init__(env)
        validation.check_int("PixelWrapper: frame_stack", frame_stack)
        validation.check_int("PixelWrapper: image_size", image_size, 8)
        self.frame_stack = int(frame_stack)
        self.image_size = int(image_size)
        # render_fn(pipeline_state) -> uint8 [H, W, 3]; public so callers can render videos.
        self.render_fn = make_renderer(env, self.image_size, **render_kwargs)

    def reset(self, rng: jax.Array) -> Any:
        state = self.env.reset(rng)
        frame = self.render_fn(state.pipeline_state)
        obs = jnp.tile(frame, (1, 1, self.frame_stack))
        return state.replace(obs=obs, info={**state.info, "state_obs": state.obs})

    def step(self, state: Any, action: jax.Array) -> Any:
        # The wrapped env sees its own vector observation (its step may read it, and
        # `EpisodeWrapper`'s repeat scan needs the observation's shape unchanged).
        inner = state.replace(obs=state.info["state_obs"])
        nstate = self.env.step(inner, action)
        frame = self.render_fn(nstate.pipeline_state)
        obs = jnp.concatenate([state.obs[..., 3:], frame], axis=-1)  # drop oldest, newest last
        return nstate.replace(obs=obs, info={**nstate.info, "state_obs": nstate.obs})

    @property
    def observation_size(self) -> tuple[int, int, int]:
        """The observation's shape (H, W, 3 * frame_stack), as Playground's vision envs give it."""
        return (self.image_size, self.image_size, 3 * self.frame_stack)

    @property
    def observation_dtype(self) -> Any:
        return jnp.uint8

    @property
    def state_observation_size(self) -> int:
        """Length of the wrapped env's vector observation, `info['state_obs']`."""
        return self.env.observation_size
