"""`make_renderer(env) -> render_fn(pipeline_state) -> uint8 [size, size, 3]` and `render`."""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import numpy as np

from mbjax import validation
from mbjax.render.raster import rasterize, to_uint8
from mbjax.render.scenes import SCENES

RenderFn = Callable[[Any], jax.Array]


def _task_of(env: Any) -> Any:
    """The innermost env (through mbjax and Brax wrappers)."""
    return getattr(env, "unwrapped", env)


def renders(env_or_name: Any) -> bool:
    """True if `make_renderer` supports this env (own tasks; dmc/* with MJX ray casting)."""
    try:
        _backend_of(env_or_name if not isinstance(env_or_name, str) else _make(env_or_name))
    except ValueError:
        return False
    return True


def _make(name: str) -> Any:
    from mbjax.envs import make

    return make(name)


def _backend_of(env: Any) -> str:
    task = _task_of(env)
    if type(task).__name__ in SCENES and hasattr(task, "init_q"):
        return "scene2d"
    if hasattr(task, "mjx_model") or hasattr(task, "_mjx_model"):
        return "mjx_raycast"
    raise ValueError(
        f"mbjax.render: no renderer for {type(task).__name__}; supported: mbjax's own tasks "
        f"({', '.join(SCENES)}) and MuJoCo Playground dmc/* envs (MJX ray casting)"
    )


def make_renderer(env_or_name: Any, size: int = 64, **kwargs: Any) -> RenderFn:
    """A pure, jittable, vmappable render function for one environment.

    Args:
      env_or_name: an env from `mbjax.envs.make` (any wrapping) or its registry name.
      size: image height = width in pixels (static).
      **kwargs: dmc/* only: options of `mbjax.render.mjx_raycast.make_mjx_renderer` (`camera`).

    Returns:
      render_fn(pipeline_state) -> uint8 [size, size, 3], where pipeline_state is
      `state.pipeline_state` (own tasks: the physical state q [q_size]; dmc: MJX `Data`).
      For a batch: `jax.jit(jax.vmap(render_fn))(states.pipeline_state)` -> [B, size, size, 3].
    """
    validation.check_int("make_renderer: size", size, 8)
    env = _make(env_or_name) if isinstance(env_or_name, str) else env_or_name
    backend = _backend_of(env)
    task = _task_of(env)
    if backend == "mjx_raycast":
        from mbjax.render.mjx_raycast import make_mjx_renderer

        return make_mjx_renderer(task, size=size, **kwargs)
    if kwargs:
        raise ValueError(f"make_renderer: unknown keyword argument(s) {sorted(kwargs)}")
    # The static shapes are built and rasterized once, eagerly (also when make_renderer is called
    # while tracing): a constant [size, size, 3] that every frame composites over.
    with jax.ensure_compile_time_eval():
        scene = SCENES[type(task).__name__](task)
        backdrop = np.asarray(rasterize(scene.static, scene.view, size, scene.background))

    def render_fn(q: jax.Array) -> jax.Array:
        return to_uint8(rasterize(scene.draw(q), scene.view, size, backdrop))

    return render_fn


@functools.lru_cache(maxsize=32)
def _cached_renderer(name: str, size: int) -> RenderFn:
    return jax.jit(make_renderer(name, size))


def render(env_or_name: Any, state: Any, size: int = 64) -> jax.Array:
    """One image, uint8 [size, size, 3], of `state` (a `State` or its pipeline_state).

    Convenience for interactive use (a name's jitted renderer is cached); in compiled code and for
    batches use `make_renderer`.
    """
    pipeline_state = getattr(state, "pipeline_state", state)
    if isinstance(env_or_name, str):
        return _cached_renderer(env_or_name, int(size))(pipeline_state)
    return make_renderer(env_or_name, size)(pipeline_state)
