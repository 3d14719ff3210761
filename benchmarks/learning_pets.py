"""PETS learning curves over seeds: `python -m benchmarks.learning_pets --envs=cartpole_swingup`.

For each env, the seeds run as one vmapped program (`run_sweep`, sharded over local devices),
one compiled call per episode. Writes per-episode returns per seed, best-so-far, wall time to a
target return and the settings used to benchmarks/results/learning_pets.json (+ one PNG per env).
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
flags.DEFINE_list("envs", ["cartpole_swingup", "cartpole_balance"], "Environments to run.")
flags.DEFINE_integer("seeds", 3, "Seeds per environment.")
flags.DEFINE_string("preset", "cpu", "PETS preset name.")
flags.DEFINE_integer("num_episodes", 0, "Override the preset's episode count (0: keep).")
flags.DEFINE_integer("num_envs", 0, "Override the preset's parallel envs per episode (0: keep).")
flags.DEFINE_string("out", "benchmarks/results/learning_pets.json", "Output JSON path.")

# Per-env settings beyond the preset, and the return that counts as "solved" for timing.
ENV_SETTINGS = {
    "cartpole_swingup": dict(target=170.0, overrides={}),
    "cartpole_balance": dict(target=195.0, overrides={}),
    "dmc/CartpoleSwingup": dict(target=700.0, overrides={}),
    "brax/inverted_pendulum": dict(target=900.0, overrides={}),
    "brax/halfcheetah": dict(target=None, overrides={}),
}


def run_env(env: str, seeds: list[int]) -> dict:
    from mbjax.agents import pets
    from mbjax.agents.sweep import run_sweep

    settings = ENV_SETTINGS.get(env, dict(target=None, overrides={}))
    config = dataclasses.replace(pets.preset(env, FLAGS.preset), **settings["overrides"])
    if FLAGS.num_episodes:
        config = dataclasses.replace(config, num_episodes=FLAGS.num_episodes)
    if FLAGS.num_envs:
        config = dataclasses.replace(config, num_envs=FLAGS.num_envs)
    t0 = time.perf_counter()
    _, records, info = run_sweep(pets.make_program(config), seeds,
                                 progress_fn=lambda rs: print(
                                     env, "episode", rs[0]["episode"], "returns",
                                     [round(r["episode_return"], 1) for r in rs], flush=True))
    total = time.perf_counter() - t0
    returns = np.array([[r["episode_return"] for r in recs] for recs in records])
    wall = np.array([r["wall_time_s"] for r in records[0]])
    target = settings["target"]
    reached = None
    if target is not None:
        hit = np.where(returns.mean(0) >= target)[0]
        reached = None if len(hit) == 0 else {
            "episode": int(hit[0]), "env_steps": int(records[0][hit[0]]["env_steps"]),
            "wall_time_s": float(wall[hit[0]]),
        }
    return {
        "env": env, "seeds": seeds, "config": _config_dict(config),
        "env_steps": [r["env_steps"] for r in records[0]],
        "returns": returns.tolist(), "best_so_far_mean": np.maximum.accumulate(
            returns, axis=1).mean(0).tolist(),
        "mean": returns.mean(0).tolist(), "min": returns.min(0).tolist(),
        "max": returns.max(0).tolist(), "wall_time_s_per_episode_end": wall.tolist(),
        "total_wall_time_s": total, "target_return": target, "mean_reached_target": reached,
        **info,
    }


def _config_dict(config) -> dict:
    from mbjax.configs import to_dict

    return to_dict(config)


def main(argv):
    del argv
    from mbjax.compile_cache import enable_compilation_cache
    from mbjax.logging import plot_curve

    enable_compilation_cache()
    seeds = list(range(FLAGS.seeds))
    # Results accumulate per env across invocations (one env can be re-run on its own).
    results = []
    if os.path.exists(FLAGS.out):
        with open(FLAGS.out) as f:
            results = [r for r in json.load(f)["results"] if r["env"] not in FLAGS.envs]
    out_dir = os.path.dirname(FLAGS.out) or "."
    for env in FLAGS.envs:
        result = run_env(env, seeds)
        results.append(result)
        plot_curve(
            os.path.join(out_dir, f"learning_pets_{env.replace('/', '-')}.png"),
            result["env_steps"], np.array(result["returns"]),
            title=f"PETS ({FLAGS.preset}) on {env}, {len(seeds)} seeds",
        )
        write_json(FLAGS.out, {"benchmark": "learning_pets", "device": device_info(),
                               "results": results})
    print("wrote", FLAGS.out)


if __name__ == "__main__":
    app.run(main)
