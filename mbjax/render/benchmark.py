"""Rendering throughput: `python -m mbjax.render.benchmark [names...] [--size 64] [--batch 1024]`.

Times `jax.jit(jax.vmap(render_fn))` on a batch of reset states (compile excluded, median of
5 calls) and prints one line per env: frames/s. Used for the numbers in `mbjax/render/__init__`.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax

DEFAULT_NAMES = (
    "cartpole_swingup", "cartpole_balance", "pendulum_swingup", "point_mass",
    "dmc/CartpoleSwingup", "dmc/CheetahRun",
)


def frames_per_second(name: str, size: int, batch: int, repeats: int = 5) -> float:
    """Frames/s of one jitted, vmapped render of `batch` reset states of env `name`."""
    from mbjax.envs import make
    from mbjax.render import make_renderer

    env = make(name)
    states = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.PRNGKey(0), batch))
    render = jax.jit(jax.vmap(make_renderer(env, size)))
    render(states.pipeline_state).block_until_ready()  # compile
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        render(states.pipeline_state).block_until_ready()
        times.append(time.perf_counter() - start)
    return batch / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=list(DEFAULT_NAMES))
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=1024)
    args = parser.parse_args()
    print(f"device: {jax.devices()[0]}, size {args.size}, batch {args.batch}")
    for name in args.names:
        fps = frames_per_second(name, args.size, args.batch)
        print(f"{name:24s} {fps:12.0f} frames/s", flush=True)


if __name__ == "__main__":
    main()
