"""PlaNet learning curves over seeds: `python -m benchmarks.learning_planet
--envs=cartpole_swingup --seeds=3 --preset=cpu`.

For each env the seeds run as one vmapped program (`run_sweep`), one compiled call per episode.
Writes per-episode returns per seed, the settings, how many seeds reached the target return
within the episode budget, and the wall time to benchmarks/results/planet_learning.json (+ one
PNG per env). Issue 13's acceptance: cartpole_swingup from states >= 150 within 20 episodes in
at least 2 of 3 seeds.
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
flags.DEFINE_list("envs", ["cartpole_swingup"], "Environments to run.")
flags.DEFINE_integer("seeds", 3, "Seeds per environment (vmapped in one program).")
flags.DEFINE_string("preset", "cpu", "PlaNet preset name.")
flags.DEFINE_integer("num_episodes", 0, "Override the preset's episode count (0: keep).")
flags.DEFINE_float("target", 150.0, "The return that counts as reached.")
flags.DEFINE_string("out", "benchmarks/results/planet_learning.json", "Output JSON path.")


def run_env(env: str, seeds: list[int]) -> dict:
    from mbjax.agents import planet
    from mbjax.agents.sweep import run_sweep
    from mbjax.configs import to_dict

    config = planet.preset(env, FLAGS.preset)
    if FLAGS.num_episodes:
        config = dataclasses.replace(config, num_episodes=FLAGS.num_episodes)
    t0 = time.perf_counter()
    _, records, info = run_sweep(
        planet.make_program(config), seeds,
        progress_fn=lambda rs: print(
            env, "episode", rs[0]["episode"], "returns",
            [round(r["episode_return"], 1) for r in rs], "planned",
            [None if r["planned_return"] is None else round(r["planned_return"], 1) for r in rs],
            f"{time.perf_counter() - t0:.0f}s", flush=True))
    returns = np.array([[r["episode_return"] for r in recs] for recs in records])
    best = returns.max(1)
    first = [None if not np.any(row >= FLAGS.target) else int(np.argmax(row >= FLAGS.target))
             for row in returns]
    return {
        "env": env, "preset": FLAGS.preset, "seeds": seeds, "config": to_dict(config),
        "env_steps": [r["env_steps"] for r in records[0]], "returns": returns.tolist(),
        "mean": returns.mean(0).tolist(), "min": returns.min(0).tolist(),
        "max": returns.max(0).tolist(), "best_per_seed": best.tolist(),
        "target_return": FLAGS.target, "first_episode_at_target_per_seed": first,
        "seeds_reaching_target": int(sum(f is not None for f in first)),
        "planned_return": [[r["planned_return"] for r in recs] for recs in records],
        "model_loss": [[r["model_loss"] for r in recs] for recs in records],
        "wall_time_s_per_episode_end": [r["wall_time_s"] for r in records[0]],
        "total_wall_time_s": time.perf_counter() - t0,
        "note": "loaded 2-core CPU shared with other jobs; wall times are not benchmarks",
        **info,
    }


def main(argv):
    del argv
    from mbjax.compile_cache import enable_compilation_cache
    from mbjax.logging import plot_curve

    enable_compilation_cache()
    seeds = list(range(FLAGS.seeds))
    results = []
    if os.path.exists(FLAGS.out):  # results accumulate per env across invocations
        with open(FLAGS.out) as f:
            results = [r for r in json.load(f)["results"] if r["env"] not in FLAGS.envs]
    out_dir = os.path.dirname(FLAGS.out) or "."
    for env in FLAGS.envs:
        result = run_env(env, seeds)
        results.append(result)
        plot_curve(os.path.join(out_dir, f"planet_learning_{env.replace('/', '-')}.png"),
                   result["env_steps"], np.array(result["returns"]),
                   title=f"PlaNet ({FLAGS.preset}) on {env}, {len(seeds)} seeds")
        write_json(FLAGS.out, {"benchmark": "learning_planet", "device": device_info(),
                               "results": results})
    print("wrote", FLAGS.out)


if __name__ == "__main__":
    app.run(main)
