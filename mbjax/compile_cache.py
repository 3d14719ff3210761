"""Persistent XLA compilation cache: compile time is user time, so a second run of the same
configuration starts in seconds."""

from __future__ import annotations

import os

import jax


def enable_compilation_cache(path: str | None = None) -> str:
    """Turns on JAX's persistent compilation cache so a second run starts in seconds.

    The cache directory is `path`, else `$MBJAX_CACHE_DIR`, else `~/.cache/mbjax/jax`.
    Returns the directory used.
    """
    path = path or os.environ.get("MBJAX_CACHE_DIR") or os.path.expanduser("~/.cache/mbjax/jax")
    os.makedirs(path, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", path)
    # Cache everything that took noticeable time to compile, not only the slowest programs.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path
