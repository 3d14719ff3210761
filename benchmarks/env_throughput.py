"""Environment throughput: env steps/s per environment and batch size, compile time apart.

Each measurement jit-compiles `run(state, key)`: a `lax.scan` of `--steps` steps of
`vmap(env.step)` over a batch of envs with uniform random actions (reset is done before, outside
the timed call). Compile time (`jit(...).lower(...).compile()`) is reported apart from the
steady-state time per call.

    python -m benchmarks.env_throughput --envs=point_mass,brax/hopper --batch_sizes=1,64 \
        --steps=100 --out=benchmarks/results/env_throughput.json
    python -m benchmarks.env_throughput --tour  # one env per family, batched; prints steps/s
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import jax
import jax.numpy as jnp
from absl import app, flags

from benchmarks.common import compile_and_time, device_info, write_json
from mbjax.compile_cache import enable_compilation_cache

DEFAULT_ENVS = (
    "point_mass,cartpole_swingup,cartpole_balance,pendulum_swingup,"
    "brax/inverted_pendulum,brax/halfcheetah,brax/hopper,dmc/CartpoleSwingup,dmc/CheetahRun"
)
TOUR_ENVS = ("point_mass", "cartpole_swingup", "brax/inverted_pendulum", "dmc/CartpoleSwingup")

FLAGS = flags.FLAGS
def define_flags() -> None:
    """The script's flags, defined only when it runs as a script: importing it for its
    functions (benchmarks.device_check) must not claim --out and friends."""
    flags.DEFINE_list("envs", DEFAULT_ENVS.split(","), "Environments (mbjax.envs.names()).")
    flags.DEFINE_list("batch_sizes", ["1", "64", "1024"], "Numbers of envs stepped in parallel.")
    flags.DEFINE_integer("steps", 100, "Env steps per compiled call (one lax.scan).")
    flags.DEFINE_integer("repeats", 3, "Timed calls per setting (median reported).")
    flags.DEFINE_string("out", "benchmarks/results/env_throughput.json", "Output JSON path.")
    flags.DEFINE_bool("tour", False, "Step one env of every family (batch 256) and print steps/s.")


def make_runner(env: Any, batch_size: int, num_steps: int):
    """Returns (reset(key) -> batched state, run(state, key) -> (state, summed reward [B]))."""

    def reset(key: jax.Array) -> Any:
        return jax.vmap(env.reset)(jax.random.split(key, batch_size))

    def run(state: Any, key: jax.Array) -> tuple[Any, jax.Array]:
        def one(carry, k):
            state, total = carry
            action = jax.random.uniform(k, (batch_size, env.action_size), minval=-1.0, maxval=1.0)
            state = jax.vmap(env.step)(state, action)
            return (state, total + state.reward), None

        init = (state, jnp.zeros((batch_size,), jnp.float32))
        (state, total), _ = jax.lax.scan(one, init, jax.random.split(key, num_steps))
        return state, total

    return reset, run


def measure(name: str, batch_sizes: Sequence[int], num_steps: int, repeats: int) -> list[dict]:
    """Steps/s of env `name` at each batch size; compile time reported apart."""
    import mbjax.envs

    t0 = time.perf_counter()
    env = mbjax.envs.make(name)
    make_s = time.perf_counter() - t0
    rows = []
    for batch_size in batch_sizes:
        reset, run = make_runner(env, batch_size, num_steps)
        state = jax.jit(reset)(jax.random.PRNGKey(0))
        timing = compile_and_time(
            run, state, jax.random.PRNGKey(1), repeats=repeats, min_time_s=0.0
        )
        rows.append({
            "env": name,
            "backend": env.backend,
            "batch_size": batch_size,
            "steps": num_steps,
            "make_s": make_s,
            "compile_s": timing["compile_s"],
            "seconds_per_call": timing["seconds_per_call"],
            "calls": timing["calls"],
            "steps_per_s": batch_size * num_steps / timing["seconds_per_call"],
        })
    return rows


def tour(
    batch_size: int = 256, num_steps: int = 100, envs: Sequence[str] = TOUR_ENVS
) -> list[dict]:
    """Steps one environment of every family, batched, and prints its steps/s."""
    rows = []
    for name in envs:
        (row,) = measure(name, [batch_size], num_steps, repeats=3)
        rows.append(row)
        print(
            f"{name:28s} backend={row['backend']:12s} batch={batch_size:5d} "
            f"compile={row['compile_s']:6.1f}s  {row['steps_per_s']:12,.0f} steps/s",
            flush=True,
        )
    return rows


def main(argv: Sequence[str]) -> None:
    del argv
    enable_compilation_cache()
    if FLAGS.tour:
        tour()
        return
    batch_sizes = [int(b) for b in FLAGS.batch_sizes]
    results: list[dict] = []
    payload = {
        "benchmark": "env_throughput",
        "device": device_info(),
        "settings": {"envs": FLAGS.envs, "batch_sizes": batch_sizes, "steps": FLAGS.steps,
                     "repeats": FLAGS.repeats},
        "note": "steps_per_s = batch_size * steps / median seconds per compiled call "
                "(lax.scan of vmap(env.step) with random actions); reset excluded; "
                "compile_s is jit(...).lower(...).compile() time (the persistent cache may "
                "shorten it).",
        "results": results,
    }
    for name in FLAGS.envs:
        for row in measure(name, batch_sizes, FLAGS.steps, FLAGS.repeats):
            results.append(row)
            print(
                f"{name:28s} B={row['batch_size']:5d} compile={row['compile_s']:6.1f}s "
                f"{row['steps_per_s']:14,.0f} steps/s",
                flush=True,
            )
            write_json(FLAGS.out, payload)  # after every row: a killed run keeps what it measured
    write_json(FLAGS.out, payload)


if __name__ == "__main__":
    define_flags()
    app.run(main)
