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
"""

from __future__ import annotations

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


def main(argv: Sequence[str]) -> None:
    del argv
    enable_compilation_cache()
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
