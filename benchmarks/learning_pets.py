"""PETS learning curves over seeds: `python -m benchmarks.learning_pets --envs=cartpole_swingup`.

`--variants=plain,terminal_value,terminal_value_prior,bnn` also runs PETS with a learned terminal
value (`Config.terminal_value`, the propagation discounted by the critic's discount), the same
with the actor's policy prior (`TerminalValueConfig.policy_prior`, PRIOR_SEQUENCES), or with the
Bayesian network of `mbjax.models.bnn` (posterior samples as members) in place of the
ensemble, on the same budget and seeds.

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
VARIANTS = ("plain", "terminal_value", "terminal_value_prior", "bnn")
# Actor sequences per plan of the `terminal_value_prior` variant (`terminal_value` has none):
# ~20% of iCEM's first population of 40 (TD-MPC2 mixes 24 policy trajectories into 512 samples;
# the cpu population is small). TerminalValueConfig's default.
PRIOR_SEQUENCES = 8
# The BNN of the `bnn` variant: the cpu ensemble's 3 x 200 swish network, 5 posterior samples,
# a tempered KL (a 3 x 200 net on a few thousand rows underfits at kl_weight 1).
BNN_SETTINGS = dict(hidden_sizes=(200, 200, 200), num_members=5, fit_steps=2000,
                    batch_size=256, kl_weight=0.1)
flags.DEFINE_list("variants", ["plain"], f"PETS variants per env, of {', '.join(VARIANTS)}.")
flags.DEFINE_bool("replot", False, "Only redraw the per-env comparison PNGs (and references) "
                  "from the existing --out file.")

# Published curves beside ours: TD-MPC2's score files (github.com/nicklashansen/tdmpc2,
# results/tdmpc2/<task>.csv), evaluation return per seed (1, 2, 3) at env steps.
REFERENCES = {
    "dmc/CartpoleSwingupSparse": {"tdmpc2": {
        "env_steps": [0, 100_000, 200_000, 300_000],
        "return_per_seed": [[0.0, 0.0, 118.3, 842.3], [0.0, 0.0, 21.6, 707.7],
                            [0.0, 1.0, 784.8, 835.9]]}},
}

# Per-env settings beyond the preset, and the return that counts as "solved" for timing.
ENV_SETTINGS = {
    "cartpole_swingup": dict(target=170.0, overrides={}),
    "cartpole_balance": dict(target=195.0, overrides={}),
    "dmc/CartpoleSwingup": dict(target=700.0, overrides={}),
    "dmc/CartpoleSwingupSparse": dict(target=500.0, overrides={}),
    "brax/inverted_pendulum": dict(target=900.0, overrides={}),
    "brax/halfcheetah": dict(target=None, overrides={}),
}


def _variant(config, variant: str):
    """The PETS config of `variant` ("plain", "bnn": as is)."""
    if variant in ("plain", "bnn"):
        return config
    propagation = dataclasses.replace(config.propagation, discount=config.value.sac.discount)
    prior = PRIOR_SEQUENCES if variant == "terminal_value_prior" else 0
    value = dataclasses.replace(config.value, policy_prior=prior)
    return dataclasses.replace(config, terminal_value=True, propagation=propagation, value=value)


def run_env(env: str, seeds: list[int], variant: str = "plain") -> dict:
    from mbjax.agents import pets
    from mbjax.agents.sweep import run_sweep

    settings = ENV_SETTINGS.get(env, dict(target=None, overrides={}))
    config = dataclasses.replace(pets.preset(env, FLAGS.preset), **settings["overrides"])
    config = _variant(config, variant)
    model = None
    if variant == "bnn":
        from mbjax.envs import make
        from mbjax.models.bnn import BNNConfig, make_bnn

        env_ = make(config.env)
        model = make_bnn(BNNConfig(**BNN_SETTINGS), int(env_.observation_size),
                         int(env_.action_size))
    if FLAGS.num_episodes:
        config = dataclasses.replace(config, num_episodes=FLAGS.num_episodes)
    if FLAGS.num_envs:
        config = dataclasses.replace(config, num_envs=FLAGS.num_envs)
    t0 = time.perf_counter()
    program = pets.make_program(config, pets.make_pets(config, model=model))
    _, records, info = run_sweep(program, seeds,
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
        "env": env, "variant": variant, "seeds": seeds, "config": _config_dict(config),
        **({"bnn": BNN_SETTINGS} if variant == "bnn" else {}),
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
    unknown = sorted(set(FLAGS.variants) - set(VARIANTS))
    if unknown:
        raise ValueError(f"--variants={','.join(unknown)} is invalid; "
                         f"allowed: {', '.join(VARIANTS)}")
    # Results accumulate per (env, variant) across invocations (one can be re-run on its own).
    runs = set() if FLAGS.replot else {(env, v) for env in FLAGS.envs for v in FLAGS.variants}
    results = []
    if os.path.exists(FLAGS.out):
        with open(FLAGS.out) as f:
            results = [r for r in json.load(f)["results"]
                       if (r["env"], r.get("variant", "plain")) not in runs]
    out_dir = os.path.dirname(FLAGS.out) or "."
    for env in FLAGS.envs:
        for variant in [] if FLAGS.replot else FLAGS.variants:
            result = run_env(env, seeds, variant)
            results.append(result)
            suffix = "" if variant == "plain" else f"_{variant}"
            plot_curve(
                os.path.join(out_dir, f"learning_pets_{env.replace('/', '-')}{suffix}.png"),
                result["env_steps"], np.array(result["returns"]),
                title=f"PETS {variant} ({FLAGS.preset}) on {env}, {len(seeds)} seeds",
            )
            write_json(FLAGS.out, {"benchmark": "learning_pets", "device": device_info(),
                                   "results": results, "references": _references(results)})
        plot_variants(out_dir, env, [r for r in results if r["env"] == env])
    if FLAGS.replot:  # keep the measured device: only the references are added
        with open(FLAGS.out) as f:
            payload = json.load(f)
        payload["references"] = _references(results)
        write_json(FLAGS.out, payload)
    print("wrote", FLAGS.out)


def _references(results: list[dict]) -> dict:
    """The published curves (REFERENCES) of the envs in `results`."""
    return {e: REFERENCES[e] for e in sorted({r["env"] for r in results}) if e in REFERENCES}


def plot_variants(out_dir: str, env: str, results: list[dict]) -> None:
    """One PNG with every variant measured on `env` (mean line, min-max band over seeds)."""
    if len(results) < 2:
        return
    from benchmarks.common import plot_curves

    curves = {r.get("variant", "plain"): {
        "env_steps": r["env_steps"], "return_mean": r["mean"], "return_min": r["min"],
        "return_max": r["max"], "return_per_seed": r["returns"]} for r in results}
    plot_curves(os.path.join(out_dir, f"learning_pets_{env.replace('/', '-')}_variants.png"),
                curves, f"PETS variants ({FLAGS.preset}) on {env}")


if __name__ == "__main__":
    app.run(main)
