"""Shared benchmark helpers: device info, compile/steady-state timing, matmul peak, JSON output."""

from __future__ import annotations

import json
import os
import platform
import subprocess
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
    times, cpu = steady_times(compiled, *args, repeats=repeats, min_time_s=min_time_s)
    return {"compile_s": compile_s, "seconds_per_call": float(np.median(times)),
            "cpu_seconds_per_call": cpu, "calls": len(times)}


def steady_times(
    compiled: Callable, *args: Any, repeats: int = 5, min_time_s: float = 0.5
) -> tuple[list[float], float]:
    """Wall seconds of each call of an already compiled and warmed-up `compiled(*args)` (at
    least `repeats` calls and `min_time_s` seconds, at most 1000 calls), and the process CPU
    seconds per call."""
    times: list[float] = []
    start, cpu0 = time.perf_counter(), time.process_time()
    while len(times) < repeats or time.perf_counter() - start < min_time_s:
        t = time.perf_counter()
        block(compiled(*args))
        times.append(time.perf_counter() - t)
        if len(times) >= 1000:
            break
    return times, (time.process_time() - cpu0) / len(times)


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


def run_json_script(python: str, script: str, config: dict[str, Any],
                    timeout_s: float) -> dict[str, Any]:
    """Runs `python script '<config as JSON>'` in a subprocess (e.g. a script inside mbrl-lib's
    own virtualenv, .mbrl_venv/) and returns the JSON object it printed on its last stdout line,
    with `wall_s` (the subprocess's whole wall time) added; on a missing interpreter, a timeout
    or a non-zero exit: {"error": ...} (the last lines of its stderr)."""
    if not os.path.exists(python):
        return {"error": f"{python} not found: run `bash benchmarks/setup_mbrl_lib.sh` first"}
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([python, script, json.dumps(config)], capture_output=True,
                              text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout_s:.0f}s"}
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        return {"error": f"exit code {proc.returncode}: " + " | ".join(tail)}
    try:
        result = json.loads(lines[-1])
    except json.JSONDecodeError:
        return {"error": f"no JSON on the last line of stdout: {lines[-1][:200]!r}"}
    return dict(result, wall_s=time.perf_counter() - t0)


def normalise_argv(argv: list[str]) -> list[str]:
    """absl flags use underscores; accept documented spellings with dashes
    (`--compare-mbrl-lib`) too."""
    out = []
    for a in argv:
        if a.startswith("--") and "-" in a[2:].split("=")[0]:
            name, eq, val = a[2:].partition("=")
            a = "--" + name.replace("-", "_") + eq + val
        out.append(a)
    return out


def seed_curve(make_train: Callable[[Any], Callable], config: Any, seeds: int,
               target: float | None = None) -> dict[str, Any]:
    """`seeds` seeds of `make_train(config)` (a pure `train(key) -> (state, metrics)` whose
    metrics have `episode_return`, `env_steps`, `nonfinite` per iteration) as one vmapped
    program, compile timed apart from the run: per-iteration returns (mean / min / max / per
    seed), env steps, and with `target` the env steps at which each seed first reached it."""
    keys = jnp.stack([jax.random.PRNGKey(s) for s in range(seeds)])
    t0 = time.perf_counter()
    compiled = jax.jit(jax.vmap(make_train(config))).lower(keys).compile()
    compile_s = time.perf_counter() - t0
    cpu0, t0 = time.process_time(), time.perf_counter()
    _, metrics = block(compiled(keys))
    run_s, run_cpu_s = time.perf_counter() - t0, time.process_time() - cpu0
    returns = np.asarray(metrics.episode_return, dtype=float)  # [S, iterations]
    steps = np.asarray(metrics.env_steps)[0].tolist()
    out = {
        "env_steps": steps, "return_mean": returns.mean(0).tolist(),
        "return_min": returns.min(0).tolist(), "return_max": returns.max(0).tolist(),
        "return_per_seed": returns.tolist(),
        "final_return_mean": float(returns[:, -1].mean()),
        "best_return_mean": float(returns.max(axis=1).mean()),
        "nonfinite": bool(np.asarray(metrics.nonfinite).any()),
        "compile_s": compile_s, "run_s": run_s, "run_process_cpu_s": run_cpu_s,
    }
    if target is not None:
        first = []
        for seed_returns in returns:
            hit = [s for s, r in zip(steps, seed_returns, strict=True) if r >= target]
            first.append(hit[0] if hit else None)
        out["target"] = {"target": target, "first_env_steps_per_seed": first,
                         "seeds_reaching": sum(f is not None for f in first)}
    return out


def plot_curves(path: str, curves: dict[str, dict[str, Any]], title: str,
                hline: float | None = None, hline_label: str | None = None) -> None:
    """One PNG of several `seed_curve`-style curves (mean line, min-max band) against env
    steps; an optional horizontal reference line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for name, c in curves.items():
        n = len(c["return_per_seed"])
        ax.plot(c["env_steps"], c["return_mean"], label=f"{name} (mean of {n})")
        ax.fill_between(c["env_steps"], c["return_min"], c["return_max"], alpha=0.2)
    if hline is not None:
        ax.axhline(hline, color="gray", lw=0.8, ls="--", label=hline_label)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("evaluation return")
    ax.set_title(title)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
