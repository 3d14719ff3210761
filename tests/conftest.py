"""Shared pytest setup: CPU-only, persistent compile cache, quiet backends."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("MUJOCO_GL", "disable")

from mbjax.compile_cache import enable_compilation_cache  # noqa: E402

enable_compilation_cache()
