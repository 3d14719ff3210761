"""Ground-truth MPC with iLQR vs CEM: the true environment as the model, in one run.

    python -m benchmarks.ilqr_vs_cem --out=benchmarks/results/ilqr_vs_cem.json \
        [--envs=pendulum_swingup,cartpole_swingup] [--seeds=5]

Per env and planner: one jitted program runs a 200-step episode per seed (`vmap` over seeds),
replanning every step with `make_env_problem(env)` (iLQR uses its `step`/`reward`, CEM its
objective) and shifting the warm start by one. Same seeds (reset and planner keys) for every
planner. Reported: episode returns per seed, mean/min/max, compile time and the wall time of the
compiled call (all seeds together), and for iLQR the ratio criterion of issue 14:
iLQR >= 95% of CEM's return, which for negative returns (pendulum_swingup's quadratic cost)
reads mean_iLQR >= mean_CEM - 0.05 |mean_CEM|.

Planners: "ilqr" (defaults: H 25, 10 iterations, clamped bounds), "ilqr_ddp" (ddp=True),
"cem" (PETS' 400 / 40 / 5, H 25: the ground-truth CEM-MPC reference).

PETS with iLQR on the learned ensemble (issue 14: >= 150 after 5 episodes on cartpole_swingup):

    python -m benchmarks.ilqr_vs_cem --pets --pets_seeds=0,1,2,3,4,5 \
        --out=benchmarks/results/pets_ilqr_cartpole_swingup.json \
        [--pets_overrides=planner_config.restarts=4]

runs the PETS `cpu` preset with `--config.planner=ilqr` (plus `--pets_overrides`, dotted config
paths as on the command line) for `--pets_episodes` episodes, the seeds vmapped (`run_sweep`),
and writes per-seed returns and planned returns per episode, min/max of the last episode.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from benchmarks.common import device_info, write_json
from mbjax import planners as P
from mbjax.compile_cache import enable_compilation_cache
from mbjax.envs.registry import make
from mbjax.rollout import make_env_problem

FLAGS = flags.FLAGS
PLANNER_SETTINGS = {
    "ilqr": ("ilqr", dict(horizon=25)),
    "ilqr_ddp": ("ilqr", dict(horizon=25, ddp=True)),
    "cem": ("cem", dict(horizon=25)),
}


def define_flags() -> None:
    flags.DEFINE_list("envs", ["pendulum_swingup"], "Environments (mbjax.envs.names()).")
    flags.DEFINE_list("planners", list(PLANNER_SETTINGS), "Planners (keys of PLANNER_SETTINGS).")
    flags.DEFINE_integer("seeds", 5, "Seeds 0 .. seeds-1 (vmapped).")
    flags.DEFINE_integer("steps", 200, "Env steps per episode.")
    flags.DEFINE_string("out", "benchmarks/results/ilqr_vs_cem.json", "Output JSON path.")
    flags.DEFINE_bool("pets", False, "Run PETS with iLQR on a learned ensemble instead.")
    flags.DEFINE_string("pets_env", "cartpole_swingup", "PETS env (cpu preset).")
    flags.DEFINE_list("pets_seeds", ["0", "1", "2"], "PETS seeds (vmapped).")
    flags.DEFINE_integer("pets_episodes", 5, "PETS episodes (the first one random).")
    flags.DEFINE_list("pets_overrides", [], "PETS config overrides, path=value.")


def episode_fn(env: Any, planner: P.Planner, steps: int):
    """episode(key) -> (rewards [T], iLQR iterations per plan [T] or zeros)."""
    problem_for = make_env_problem(env)

    def episode(key):
        k_reset, k_init, k_plan = jax.random.split(key, 3)

        def step(carry, k):
            state, plan_state = carry
            actions, plan_state, info = planner.plan(plan_state, problem_for(state), state.obs, k)
            state = env.step(state, actions[0])
            iters = info.get("iterations", jnp.zeros((), jnp.int32))
            return (state, planner.shift(plan_state, 1)), (state.reward, iters)

        carry = (env.reset(k_reset), planner.init(env.action_size, k_init))
        return jax.lax.scan(step, carry, jax.random.split(k_plan, steps))[1]

    return episode


def measure(env_name: str, name: str, seeds: int, steps: int) -> dict[str, Any]:
    env = make(env_name)
    kind, overrides = PLANNER_SETTINGS[name]
    planner = P.make_planner(kind, **overrides)
    keys = jnp.stack([jax.random.PRNGKey(s) for s in range(seeds)])
    run = jax.jit(jax.vmap(episode_fn(env, planner, steps)))
    t0 = time.perf_counter()
    compiled = run.lower(keys).compile()
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    rewards, iters = jax.block_until_ready(compiled(keys))
    wall_s = time.perf_counter() - t0
    returns = np.asarray(rewards).sum(axis=1)
    return {
        "env": env_name, "planner": name, "config": {"planner": kind, **overrides},
        "seeds": list(range(seeds)), "returns": [float(r) for r in returns],
        "mean": float(returns.mean()), "min": float(returns.min()), "max": float(returns.max()),
        "last50_mean_reward": float(np.asarray(rewards)[:, -50:].mean()),
        "mean_iterations_per_plan": float(np.asarray(iters).mean()),
        "compile_s": compile_s, "wall_s": wall_s,
        "wall_s_per_env_step": wall_s / (seeds * steps),
    }


def compare(rows: list[dict]) -> list[dict]:
    """The issue-14 criterion per env and iLQR variant, against CEM."""
    out = []
    for row in rows:
        ref = next((r for r in rows if r["env"] == row["env"] and r["planner"] == "cem"), None)
        if ref is None or row["planner"] == "cem":
            continue
        threshold = ref["mean"] - 0.05 * abs(ref["mean"])
        out.append({"env": row["env"], "planner": row["planner"], "mean": row["mean"],
                    "cem_mean": ref["mean"], "threshold_95pct": threshold,
                    "passes": row["mean"] >= threshold,
                    "relative_gap": (row["mean"] - ref["mean"]) / abs(ref["mean"])})
    return out


def measure_pets(env_name: str, seeds: list[int], episodes: int,
                 overrides: dict[str, str]) -> dict[str, Any]:
    """PETS (cpu preset) with `planner=ilqr` and `overrides`: per-seed returns per episode."""
    from mbjax import configs
    from mbjax.agents import pets
    from mbjax.agents.sweep import run_sweep

    config = configs.apply_overrides(
        configs.override(pets.preset(env_name, "cpu"), "planner", "ilqr"),
        {"num_episodes": str(episodes), **overrides})
    t0 = time.perf_counter()
    _, records, _ = run_sweep(pets.make_program(config), seeds, progress_fn=lambda rs: print(
        "episode", rs[0]["episode"], "returns", [round(r["episode_return"], 1) for r in rs],
        "planned", [round(r["planned_return"] or 0.0, 1) for r in rs], flush=True))
    returns = np.array([[r["episode_return"] for r in recs] for recs in records])
    planned = [[r["planned_return"] for r in recs] for recs in records]
    return {
        "env": env_name, "algo": "pets", "preset": "cpu", "planner": "ilqr",
        "overrides": overrides, "config": configs.to_dict(config), "seeds": seeds,
        "returns": returns.tolist(), "planned_returns": planned,
        "last_episode": {"episode": episodes, "returns": returns[:, -1].tolist(),
                         "mean": float(returns[:, -1].mean()),
                         "min": float(returns[:, -1].min()),
                         "max": float(returns[:, -1].max())},
        "total_wall_time_s": time.perf_counter() - t0,
    }


def main_pets() -> None:
    overrides = dict(o.split("=", 1) for o in FLAGS.pets_overrides)
    row = measure_pets(FLAGS.pets_env, [int(s) for s in FLAGS.pets_seeds], FLAGS.pets_episodes,
                       overrides)
    # Rows accumulate across invocations (other seeds or overrides are kept).
    rows = []
    if os.path.exists(FLAGS.out):
        with open(FLAGS.out) as f:
            rows = [r for r in json.load(f)["results"]
                    if (r["seeds"], r["overrides"]) != (row["seeds"], row["overrides"])]
    payload = {"benchmark": "ilqr_vs_cem --pets", "device": device_info(),
               "note": "PETS cpu preset with --config.planner=ilqr on a learned ensemble; "
                       "returns[seed][episode]; the first episode is random",
               "results": rows + [row]}
    write_json(FLAGS.out, payload)
    last = row["last_episode"]
    print(f"episode {last['episode']}: mean {last['mean']:.1f} min {last['min']:.1f} "
          f"max {last['max']:.1f}")


def main(argv: Sequence[str]) -> None:
    del argv
    enable_compilation_cache()
    if FLAGS.pets:
        return main_pets()
    rows: list[dict] = []
    payload = {"benchmark": "ilqr_vs_cem", "device": device_info(),
               "settings": {"envs": FLAGS.envs, "planners": FLAGS.planners,
                            "seeds": FLAGS.seeds, "steps": FLAGS.steps},
               "note": "ground-truth MPC (true env as the model), replanning every step; "
                       "wall_s: one compiled call for all seeds (vmapped), compile excluded",
               "results": rows, "comparison": []}
    for env_name in FLAGS.envs:
        for name in FLAGS.planners:
            row = measure(env_name, name, FLAGS.seeds, FLAGS.steps)
            rows.append(row)
            print(f"{env_name:20s} {name:9s} mean {row['mean']:9.2f} min {row['min']:9.2f} "
                  f"max {row['max']:9.2f}  compile {row['compile_s']:5.1f}s "
                  f"run {row['wall_s']:6.1f}s", flush=True)
            payload["comparison"] = compare(rows)
            write_json(FLAGS.out, payload)
    for c in payload["comparison"]:
        print(f"{c['env']:20s} {c['planner']:9s} vs cem: gap {100 * c['relative_gap']:+.2f}% "
              f"passes={c['passes']}")


if __name__ == "__main__":
    define_flags()
    app.run(main)
