"""Learning curves of any registered algorithm over seeds, as one vmapped program.

    python -m benchmarks.learning_curve --algo=mbppo --env=cartpole_swingup --preset=cpu \
        --seeds=3 --out=benchmarks/results/mbppo_cartpole_swingup.json \
        [--config.<field>=<value> ...]

The seeds run through `mbjax.agents.sweep.run_sweep` (the same program `experiments.sweep`
runs, sharded over local devices). Writes the per-iteration returns per seed, mean / min / max,
env steps, the first iteration whose mean reaches --target, wall time and the config to --out,
and a mean / min / max PNG next to it.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
from absl import app, flags

from benchmarks.common import device_info, write_json

FLAGS = flags.FLAGS
flags.DEFINE_string("algo", "pets", "Algorithm name (mbjax.agents.names()).")
flags.DEFINE_string("env", "cartpole_swingup", "Environment.")
flags.DEFINE_string("preset", "cpu", "Preset name.")
flags.DEFINE_integer("seeds", 3, "Seeds (one vmapped program).")
flags.DEFINE_float("target", None, "A return whose first crossing by the mean is reported.")
flags.DEFINE_string("out", None, "Output JSON path (default benchmarks/results/<algo>_<env>.json).")


OVERRIDES: dict[str, str] = {}  # --config.<field>=<value>, taken out of argv before absl


def main(argv: list[str]) -> None:
    del argv
    from mbjax import agents, configs
    from mbjax.agents.sweep import run_sweep
    from mbjax.compile_cache import enable_compilation_cache
    from mbjax.logging import plot_curve

    enable_compilation_cache()
    algo = agents.get(FLAGS.algo)
    config = configs.apply_overrides(algo.preset(FLAGS.env, FLAGS.preset), OVERRIDES)
    out = FLAGS.out or f"benchmarks/results/{FLAGS.algo}_{FLAGS.env.replace('/', '-')}.json"
    seeds = list(range(FLAGS.seeds))
    t0 = time.perf_counter()
    _, records, info = run_sweep(algo.make_program(config), seeds, progress_fn=lambda rs: print(
        FLAGS.algo, FLAGS.env, "env steps", rs[0]["env_steps"], "returns",
        [round(r["episode_return"], 1) for r in rs], flush=True))
    total = time.perf_counter() - t0
    returns = np.array([[r["episode_return"] for r in recs] for recs in records])
    steps = [r["env_steps"] for r in records[0]]
    reached = None
    if FLAGS.target is not None:
        hit = np.where(returns.mean(0) >= FLAGS.target)[0]
        reached = None if len(hit) == 0 else {"iteration": int(hit[0]),
                                              "env_steps": int(steps[hit[0]])}
    png = os.path.splitext(out)[0] + ".png"
    plot_curve(png, steps, returns,
               title=f"{FLAGS.algo} ({FLAGS.preset}) on {FLAGS.env}, {len(seeds)} seeds")
    write_json(out, {
        "benchmark": "learning_curve", "device": device_info(), "algo": FLAGS.algo,
        "env": FLAGS.env, "preset": FLAGS.preset, "seeds": seeds,
        "command": " ".join(sys.argv), "config": configs.to_dict(config),
        "env_steps": steps, "returns": returns.tolist(), "mean": returns.mean(0).tolist(),
        "min": returns.min(0).tolist(), "max": returns.max(0).tolist(),
        "best_per_seed": returns.max(1).tolist(), "final_per_seed": returns[:, -1].tolist(),
        "target": FLAGS.target, "mean_reached_target": reached, "total_wall_time_s": total,
        "records": records, "png": os.path.basename(png), **info,
    })
    print("wrote", out)


if __name__ == "__main__":
    from experiments.cli import split_config_overrides

    sys.argv, OVERRIDES = split_config_overrides(sys.argv)
    app.run(main)
