"""Dyna-Q on Sutton & Barto's mazes: figures 8.2 and 8.5 (30 vmapped runs each).

Figure 8.2: Dyna Maze, alpha 0.1, epsilon 0.1, gamma 0.95, n in {0, 5, 50}, 50 episodes; for each
n the first episode (1-based) whose mean length over the runs is <= 16 (and <= 18, 20).
Figure 8.5: shortcut maze, Dyna-Q vs Dyna-Q+ (alpha 1.0, n 50, kappa 1e-3 as in S. Zhang's
replication), cumulative reward over 6000 real steps, the shortcut opening at step 3000. These run
as steps, not episodes: `dyna_q.make_step_block` (one scan of 6000 real steps, episodes
restarting inside), since the Program's iteration is an episode.

    python -m benchmarks.dyna_maze --out=benchmarks/results/dyna_maze.json
"""

from __future__ import annotations

import dataclasses
import json
import os
import time

import jax
import numpy as np
from absl import app, flags

from mbjax.agents import dyna_q
from mbjax.agents.program import make_pure_train

flags.DEFINE_string("out", "benchmarks/results/dyna_maze.json", "Results JSON (PNGs beside it).")
flags.DEFINE_integer("runs", 30, "Vmapped runs per setting.")
flags.DEFINE_integer("seed", 0, "Key of the runs.")
FLAGS = flags.FLAGS


def first_at_most(lengths: np.ndarray, limit: float) -> int | None:
    hit = np.flatnonzero(lengths <= limit)
    return int(hit[0]) + 1 if hit.size else None


def figure_8_2(runs: int, key) -> dict:
    out = {}
    for n in (0, 5, 50):
        config = dataclasses.replace(dyna_q.preset("maze/dyna", "paper"), planning_steps=n)
        train = jax.jit(jax.vmap(make_pure_train(dyna_q.make_program(config))))
        t0 = time.perf_counter()
        state, metrics = train(jax.random.split(key, runs))
        lengths = np.asarray(metrics.episode_length).mean(0)
        out[str(n)] = {"mean_episode_length": lengths.round(2).tolist(),
                       "first_episode_le_16": first_at_most(lengths, 16),
                       "first_episode_le_18": first_at_most(lengths, 18),
                       "first_episode_le_20": first_at_most(lengths, 20),
                       "wall_s": round(time.perf_counter() - t0, 2)}
    return out


def figure_8_5(runs: int, key, steps: int = 6000) -> dict:
    out = {}
    for plus in (False, True):
        config = dataclasses.replace(dyna_q.preset("maze/shortcut", "paper"), plus=plus)
        env = dyna_q.make_env(config)
        block = dyna_q.make_step_block(env, config, steps)
        run = jax.jit(jax.vmap(lambda k: block(dyna_q.make_init(env, config)(k))[1]))
        cumulative = np.asarray(run(jax.random.split(key, runs)))  # [runs, steps]
        before = cumulative[:, 2999]
        out["dyna_q_plus" if plus else "dyna_q"] = {
            "mean_cumulative_reward": cumulative.mean(0)[::50].round(2).tolist(),
            "reward_after_change": float((cumulative[:, -1] - before).mean()),
            "reward_before_change": float(before.mean()),
        }
    return out


def plot(results: dict, path_82: str, path_85: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for n, r in results["figure_8_2"].items():
        lengths = r["mean_episode_length"]
        ax.plot(range(2, len(lengths) + 1), lengths[1:], label=f"{n} planning steps")
    ax.set(xlabel="Episodes", ylabel="Steps per episode", ylim=(14, 800), yscale="log",
           title="Dyna-Q on the Dyna Maze (figure 8.2)")
    ax.legend()
    fig.savefig(path_82, dpi=100, bbox_inches="tight")
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, r in results["figure_8_5"].items():
        ys = r["mean_cumulative_reward"]
        ax.plot(np.arange(len(ys)) * 50, ys, label=name.replace("_", "-").replace("-plus", "+"))
    ax.axvline(3000, color="gray", ls=":")
    ax.set(xlabel="Time steps", ylabel="Cumulative reward",
           title="Shortcut maze (figure 8.5)")
    ax.legend()
    fig.savefig(path_85, dpi=100, bbox_inches="tight")


def main(argv) -> None:
    del argv
    key = jax.random.PRNGKey(FLAGS.seed)
    results = {"runs": FLAGS.runs, "seed": FLAGS.seed,
               "figure_8_2": figure_8_2(FLAGS.runs, key),
               "figure_8_5": figure_8_5(FLAGS.runs, key)}
    os.makedirs(os.path.dirname(FLAGS.out) or ".", exist_ok=True)
    with open(FLAGS.out, "w") as f:
        json.dump(results, f, indent=1)
    base = os.path.splitext(FLAGS.out)[0]
    plot(results, base + "_fig8_2.png", base + "_fig8_5.png")
    for n, r in results["figure_8_2"].items():
        print(f"n={n}: first episode mean length <=16: {r['first_episode_le_16']}, <=18: "
              f"{r['first_episode_le_18']}, <=20: {r['first_episode_le_20']}")
    for name, r in results["figure_8_5"].items():
        print(f"{name}: reward before change {r['reward_before_change']:.1f}, after "
              f"{r['reward_after_change']:.1f}")


if __name__ == "__main__":
    app.run(main)
