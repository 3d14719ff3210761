"""Shared benchmark helpers: device info, compile/steady-state timing, matmul peak, JSON output."""

from __future__ import annotations

import json
import os
import platform
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np


def device_info() -> dict[str, Any]:
    """What the numbers were measured on (goes into every result file)."""
    dev = jax.devices()[0]
    return {
        "platform": dev.platform,
        "device_kind": getattr(dev, "device_kind", str(dev)),
        "num_devices": jax.device_count(),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "jax": jax.__version__,
    }


def block(tree: Any) -> Any:
    return jax.tree_util.tree_map(
        lambda x: x.block_until_ready() if hasattr(x, "block_until_ready") else x, tree
    )


def compile_and_time(
    fn: Callable, *args: Any, repeats: int = 5, min_time_s: float = 0.5
) -> dict[str, float]:
    """Compiles `jax.jit(fn)` for `args` (timed apart), then times steady-state calls.

    Returns {"compile_s", "seconds_per_call" (median wall), "cpu_seconds_per_call" (process CPU
    time, all threads; on a shared CPU it shows how well the program uses the cores it gets),
    "calls"}. Runs at least `repeats` calls and at least `min_time_s` seconds in total.
    """
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    compile_s = time.perf_counter() - t0
    block(compiled(*args))  # warm-up: first execution allocates buffers
    times: list[float] = []
    start, cpu0 = time.perf_counter(), time.process_time()
    while len(times) < repeats or time.perf_counter() - start < min_time_s:
        t = time.perf_counter()
        block(compiled(*args))
        times.append(time.perf_counter() - t)
        if len(times) >= 1000:
            break
    cpu = (time.process_time() - cpu0) / len(times)
    return {"compile_s": compile_s, "seconds_per_call": float(np.median(times)),
            "cpu_seconds_per_call": cpu, "calls": len(times)}


def matmul_peak_flops(size: int = 2048, dtype: Any = jnp.float32) -> float:
    """Measured float32 matmul throughput of this device (FLOP/s): the practical peak."""
    a = jnp.ones((size, size), dtype)
    b = jnp.ones((size, size), dtype)
    timing = compile_and_time(lambda x, y: x @ y, a, b, repeats=5, min_time_s=1.0)
    return 2.0 * size**3 / timing["seconds_per_call"]


def write_json(path: str, payload: dict[str, Any]) -> None:
    """Writes `payload` atomically (tmp file + rename) so a killed run never leaves half a file."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(payload, f, indent=2, sort_keys=False)
        f.write("\n")
    os.replace(tmp, path)
