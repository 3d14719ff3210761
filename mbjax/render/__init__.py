"""Pixels inside jit: pure-JAX renderers for mbjax's environments, and a video writer.

    render_fn = mbjax.render.make_renderer("cartpole_swingup", size=64)
    frame = render_fn(state.pipeline_state)                     # uint8 [64, 64, 3]
    frames = jax.jit(jax.vmap(render_fn))(states.pipeline_state)  # uint8 [B, 64, 64, 3]
    mbjax.render.write_video("eval.gif", frames, fps=25)

Own tasks (`cartpole_swingup`, `cartpole_balance`, `pendulum_swingup`, `point_mass`) are drawn by
`raster.py`: a 2-D scene of anti-aliased signed-distance shapes evaluated on the pixel grid, so an
image is a few fused array ops and a batch of states is one vmapped, jitted call.

Why written here: rendering has to run inside the same compiled program as the env step (for
pixel observations under `jax.vmap`/`lax.scan`), so it must be pure JAX. MuJoCo's own renderer and
Madrona-MJX (Playground's batch renderer) are OpenGL/CUDA programs outside XLA tracing (Madrona
also needs a GPU); Brax's `brax.io.image` draws through PyTinyRenderer on the host; the JAX
rasterizers we know of (e.g. `jaxrenderer`) are 3-D triangle-mesh pipelines, not anti-aliased
2-D shape drawing. None draws our 2-D tasks under jit/vmap, and the rasterizer needed is ~100
lines.

dmc/* envs are ray cast per pixel with MJX (`mjx_raycast.py`); all 25 Playground DM Control envs
render, except that their few cylinder geoms (decorations of Acrobot, Finger and Pendulum) are
not hit by `mjx.ray` and stay invisible.

Measured with `python -m mbjax.render.benchmark` (64x64, `jax.jit(jax.vmap(render_fn))`, compile
excluded) on a shared 2-core CPU, JAX 0.10 (other jobs running, so +-40%): cartpole_swingup
3.2k-4.9k frames/s, cartpole_balance 3.0k, pendulum_swingup 5.8k-7.5k, point_mass 22k-35k
(batch 1024); dmc/CartpoleSwingup 0.9k, dmc/CheetahRun 0.7k (batch 128).
"""

from mbjax.render.core import make_renderer, render, renders
from mbjax.render.raster import Shapes, View, rasterize, to_uint8
from mbjax.render.video import policy_frames, write_video

__all__ = [
    "Shapes", "View", "make_renderer", "policy_frames", "rasterize", "render", "renders",
    "to_uint8", "write_video",
]
