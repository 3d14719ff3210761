"""GPS learning curves over seeds: `python -m benchmarks.learning_gps --envs=cartpole_balance`.

For each env the seeds run as one vmapped program (`run_sweep`), one compiled call per GPS
iteration. Per iteration and seed it records the neural policy's evaluation return (the
record's `episode_return`), the controller rollouts' mean return, and the achieved KL between
successive controllers against its target epsilon. Writes benchmarks/results/gps_learning.json
and one PNG per env (benchmarks/results/gps_learning_<env>.png).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time

import numpy as np
from absl import app, flags

from benchmarks.common import device_info, write_json

FLAGS = flags.FLAGS
flags.DEFINE_list("envs", ["cartpole_balance"], "Environments to run.")
flags.DEFINE_integer("seeds", 3, "Seeds per environment.")
flags.DEFINE_string("preset", "cpu", "GPS preset name.")
flags.DEFINE_integer("iterations", 0, "Override the preset's iteration count (0: keep).")
flags.DEFINE_string("out", "benchmarks/results/gps_learning.json", "Output JSON path.")

# The return that counts as solved (cartpole_balance: 1 per step, 200-step episodes).
TARGETS = {"cartpole_balance": 200.0}


def run_env(env: str, seeds: list[int]) -> dict:
    from mbjax.agents import gps
    from mbjax.agents.sweep import run_sweep
    from mbjax.configs import to_dict

    config = gps.preset(env, FLAGS.preset)
    if FLAGS.iterations:
        config = dataclasses.replace(config, iterations=FLAGS.iterations)
    t0 = time.perf_counter()
    _, records, info = run_sweep(gps.make_program(config), seeds,
                                 progress_fn=lambda rs: print(
                                     env, "iteration", rs[0]["iteration"], "policy",
                                     [round(r["episode_return"], 1) for r in rs], "samples",
                                     [round(r["sample_return"], 1) for r in rs], "kl/eps",
                                     [round(r["kl"] / r["kl_target"], 3) for r in rs],
                                     flush=True))
    field = lambda name: np.array([[r[name] for r in recs] for recs in records])  # noqa: E731
    returns, samples = field("episode_return"), field("sample_return")
    ratio = field("kl") / field("kl_target")
    target = TARGETS.get(env)
    first_hit = None
    if target is not None:
        first_hit = [next((i for i, r in enumerate(row) if r >= target), None)
                     for row in returns.tolist()]
    return {
        "env": env, "seeds": seeds, "config": to_dict(config),
        "env_steps": field("env_steps").tolist(),
        "policy_returns": returns.tolist(), "sample_returns": samples.tolist(),
        "kl": field("kl").tolist(), "kl_target": field("kl_target").tolist(),
        "kl_ratio_min": float(ratio.min()), "kl_ratio_max": float(ratio.max()),
        "eta_ok_all": bool(field("eta_ok").all()),
        "mean": returns.mean(0).tolist(), "min": returns.min(0).tolist(),
        "max": returns.max(0).tolist(), "target_return": target,
        "first_iteration_at_target": first_hit,
        "total_wall_time_s": time.perf_counter() - t0,
        "note": "wall time measured on a loaded shared 2-core CPU: not a speed benchmark",
        **info,
    }


def main(argv):
    del argv
    from mbjax.compile_cache import enable_compilation_cache
    from mbjax.logging import plot_curve

    enable_compilation_cache()
    seeds = list(range(FLAGS.seeds))
    results = []
    if os.path.exists(FLAGS.out):
        with open(FLAGS.out) as f:
            results = [r for r in json.load(f)["results"] if r["env"] not in FLAGS.envs]
    out_dir = os.path.dirname(FLAGS.out) or "."
    for env in FLAGS.envs:
        result = run_env(env, seeds)
        results.append(result)
        plot_curve(
            os.path.join(out_dir, f"gps_learning_{env.replace('/', '-')}.png"),
            result["env_steps"][0], np.array(result["policy_returns"]),
            title=f"GPS ({FLAGS.preset}) neural policy on {env}, {len(seeds)} seeds",
        )
        write_json(FLAGS.out, {"benchmark": "learning_gps", "device": device_info(),
                               "results": results})
    print("wrote", FLAGS.out)


if __name__ == "__main__":
    app.run(main)
