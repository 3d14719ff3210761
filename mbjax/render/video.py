"""Evaluation videos: `policy_frames` renders a policy episode inside jit; `write_video` writes
frames as GIF (always) or MP4 (needs ffmpeg).

CLI wiring (experiments/evaluate.py, next to `_returns`): for a run whose env renders
(`mbjax.render.renders(env)`), `frames, length = jax.jit(policy_frames, static_argnums=(0, 1,
2, 4, 5))(env, *policy, key, num_steps, 64)` then `write_video(run_dir/"eval.gif",
frames[:length + 1], fps=round(1 / (env.dt * action_repeat)))`.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import numpy as np


def write_video(path: str, frames, fps: float = 25.0) -> str:
    """Writes frames: [T, H, W, 3] uint8 to `path` and returns the path.

    `.gif` is written with Pillow (no external program). `.mp4` (or any other suffix) goes through
    `mediapy.write_video`, which needs an `ffmpeg` executable; without one this raises a
    RuntimeError naming the GIF alternative rather than failing inside mediapy.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(
            f"write_video: frames must be uint8 [T, H, W, 3], got {frames.dtype} {frames.shape}"
        )
    if not fps > 0:
        raise ValueError(f"write_video: fps={fps!r} is invalid; allowed: > 0")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if path.lower().endswith(".gif"):
        from PIL import Image

        images = [Image.fromarray(f) for f in frames]
        # GIF stores delays in 1/100 s units; Pillow takes milliseconds.
        images[0].save(path, save_all=True, append_images=images[1:],
                       duration=max(int(round(1000.0 / fps)), 10), loop=0)
        return path
    import mediapy

    if not mediapy.video_is_available():  # looks for ffmpeg (PATH or mediapy.set_ffmpeg)
        raise RuntimeError(
            f"write_video: writing {path!r} needs ffmpeg, which is not installed; "
            "use a .gif path instead"
        )

    mediapy.write_video(path, frames, fps=fps)
    return path


def policy_frames(env: Any, init_carry: Callable, policy: Callable, key: Any, num_steps: int,
                  size: int = 64) -> tuple[Any, Any]:
    """Frames of one policy episode, rendered inside the compiled rollout.

    (init_carry, policy) is what `Algorithm.make_policy` / `mbjax.runs.load_policy` return; the
    episode is `mbjax.acting.policy_episode`'s, so `policy_return(env, ..., key, T)` scores the
    very episode shown. Works for state and pixel envs alike (frames come from pipeline_state).

    Returns (frames: uint8 [num_steps + 1, size, size, 3], the reset frame first; length: [] int32,
    the agent steps taken before the episode's first done): `frames[:length + 1]` is the episode.
    jit with env, init_carry, policy, num_steps and size static.
    """
    import jax.numpy as jnp

    from mbjax import acting
    from mbjax.render.core import make_renderer

    render_fn = make_renderer(env, size)
    episode, frames = acting.policy_episode(
        env, init_carry, policy, key, num_steps,
        observe=lambda ep: render_fn(ep.state.pipeline_state))
    return frames, episode.length.astype(jnp.int32)
