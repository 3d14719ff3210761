"""BPTT (SVG(inf)) on pendulum_swingup against ground-truth MPC, in one run (issue 15).

    python -m benchmarks.learning_bptt --seeds=3 --out=benchmarks/results/bptt_pendulum.json \
        [--learned] [--svg1]

Runs, each as one vmapped program over seeds (`jax.jit(jax.vmap(bptt.make_train(config)))`):
  bptt_true     BPTT through the TRUE pendulum physics (`dynamics='true'`, cpu preset)
  bptt_learned  (--learned) the same through the learned ensemble (cpu preset)
  svg1_learned  (--svg1) SVG(1): one learned-model step plus a TD-trained value
and ground-truth CEM-MPC (the true env as the model, PETS' 400 / 40 / 5 CEM with H 25:
`benchmarks.ilqr_vs_cem`'s episode). Each learner's final policy (mean action) is scored on
`--eval_episodes` 200-step episodes per seed; MPC on one episode per seed. Criterion (issue 15):
BPTT >= 90% of MPC's return, which for pendulum's negative returns reads
mean_BPTT >= mean_MPC - 0.1 |mean_MPC|. Writes per-epoch curves, final scores and the
criterion to --out and the curves (with MPC's level) to a PNG next to it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from benchmarks.common import block, device_info, plot_curves, write_json

FLAGS = flags.FLAGS
ENV = "pendulum_swingup"
flags.DEFINE_integer("seeds", 3, "Number of seeds.")
flags.DEFINE_integer("num_epochs", 5, "BPTT epochs (200 env steps each, after 200 random).")
flags.DEFINE_integer("eval_episodes", 10, "Episodes scoring each seed's final policy.")
flags.DEFINE_bool("learned", False, "Also run BPTT through the learned ensemble.")
flags.DEFINE_bool("svg1", False, "Also run SVG(1) with the learned ensemble.")
flags.DEFINE_string("out", "benchmarks/results/bptt_pendulum.json", "Output JSON path.")


def run_learner(config: Any, seeds: int) -> dict[str, Any]:
    """All seeds in one vmapped program; per-epoch returns, final policies' scores."""
    from mbjax import acting
    from mbjax.agents import bptt

    keys = jnp.stack([jax.random.PRNGKey(s) for s in range(seeds)])
    t0 = time.perf_counter()
    compiled = jax.jit(jax.vmap(bptt.make_train(config))).lower(keys).compile()
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    final, metrics = block(compiled(keys))
    run_s = time.perf_counter() - t0
    env = bptt.make_bptt(config).env

    def score(state, key):  # mean action, eval_episodes episodes
        init_carry, policy = bptt.make_policy(config, state)
        returns = jax.vmap(lambda k: acting.policy_return(env, init_carry, policy, k, 200))
        return returns(jax.random.split(key, FLAGS.eval_episodes))

    finals = np.asarray(jax.jit(jax.vmap(score))(final, jax.random.split(
        jax.random.PRNGKey(1000), seeds)))  # [seeds, episodes]
    returns = np.asarray(metrics.episode_return, dtype=float)
    return {
        "env_steps": np.asarray(metrics.env_steps)[0].tolist(),
        "return_mean": returns.mean(0).tolist(), "return_min": returns.min(0).tolist(),
        "return_max": returns.max(0).tolist(), "return_per_seed": returns.tolist(),
        "final_score_per_seed": finals.mean(1).tolist(), "final_score_mean": float(finals.mean()),
        "nonfinite": bool(np.asarray(metrics.nonfinite).any()),
        "compile_s": compile_s, "run_s": run_s,
    }


def run_mpc(seeds: int) -> dict[str, Any]:
    from benchmarks.ilqr_vs_cem import PLANNER_SETTINGS, episode_fn
    from mbjax import planners
    from mbjax.envs import make

    kind, overrides = PLANNER_SETTINGS["cem"]
    planner = planners.make_planner(kind, **overrides)
    keys = jnp.stack([jax.random.PRNGKey(s) for s in range(seeds)])
    t0 = time.perf_counter()
    rewards, _ = block(jax.jit(jax.vmap(episode_fn(make(ENV), planner, 200)))(keys))
    returns = np.asarray(rewards).sum(axis=1)
    return {"planner": {"name": kind, **overrides}, "return_per_seed": returns.tolist(),
            "return_mean": float(returns.mean()), "wall_s": time.perf_counter() - t0}


def main(argv: list[str]) -> None:
    del argv
    from mbjax.agents import bptt
    from mbjax.compile_cache import enable_compilation_cache

    enable_compilation_cache()
    cpu = dataclasses.replace(bptt.preset(ENV, "cpu"), num_epochs=FLAGS.num_epochs)
    runs = {"bptt_true": dataclasses.replace(cpu, dynamics="true")}
    if FLAGS.learned:
        runs["bptt_learned"] = cpu
    if FLAGS.svg1:
        runs["svg1_learned"] = dataclasses.replace(cpu, value="svg1", horizon=1)
    payload: dict[str, Any] = {"benchmark": "learning_bptt", "device": device_info(),
                               "env": ENV, "seeds": FLAGS.seeds, "results": {}, "configs": {}}
    print(f"ground-truth MPC: {FLAGS.seeds} seeds", flush=True)
    payload["mpc"] = mpc = run_mpc(FLAGS.seeds)
    threshold = mpc["return_mean"] - 0.1 * abs(mpc["return_mean"])
    print(f"  mean {mpc['return_mean']:.1f}; 90% threshold {threshold:.1f}", flush=True)
    png = os.path.splitext(FLAGS.out)[0] + ".png"
    for name, config in runs.items():
        print(f"{name}: {FLAGS.seeds} seeds, {config.total_env_steps} env steps", flush=True)
        payload["configs"][name] = json.loads(json.dumps(dataclasses.asdict(config), default=str))
        payload["results"][name] = r = run_learner(config, FLAGS.seeds)
        r["passes_90pct_of_mpc"] = r["final_score_mean"] >= threshold
        print(f"  final score {r['final_score_mean']:.1f} per seed "
              f"{[round(x, 1) for x in r['final_score_per_seed']]}; >= 90% of MPC: "
              f"{r['passes_90pct_of_mpc']}; compile {r['compile_s']:.0f} s, run {r['run_s']:.0f} s",
              flush=True)
        payload["criterion"] = {"mpc_mean": mpc["return_mean"], "threshold_90pct": threshold,
                                "rule": "mean_BPTT >= mean_MPC - 0.1 |mean_MPC|"}
        payload["png"] = os.path.basename(png)
        write_json(FLAGS.out, payload)
        plot_curves(png, payload["results"], f"{ENV}: BPTT vs ground-truth MPC",
                    hline=mpc["return_mean"], hline_label="ground-truth CEM-MPC")
    print(f"wrote {FLAGS.out}")


if __name__ == "__main__":
    app.run(main)
