"""E2C on the pixel pendulum swing-up beside iLQR-MPC on the true state (issue 14, item 4):

    python -m benchmarks.learning_e2c [--preset=cpu] [--seeds=3] [--iterations=0]

In one run: (1) iLQR-MPC with the true `pendulum_swingup` dynamics (`make_env_problem`, the
state the planner sees is the simulator's; `benchmarks.ilqr_vs_cem.episode_fn`, horizon 25),
(2) E2C trained from pixels (seeds vmapped, `run_sweep`; per iteration the record's
`episode_return` is its latent iLQR-MPC episode with exploration noise, plus the latent linear
prediction error), then its final policy evaluated without noise (`make_policy`, `eval_episodes`
episodes per seed), (3) uniformly random actions for scale. Same reset seeds for the
evaluations. Writes benchmarks/results/e2c_pendulum.json and .png.
"""

from __future__ import annotations

import dataclasses
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from benchmarks.common import device_info, plot_curves, write_json

FLAGS = flags.FLAGS
flags.DEFINE_string("preset", "cpu", "E2C preset.")
flags.DEFINE_integer("seeds", 3, "Seeds 0 .. seeds-1 (vmapped).")
flags.DEFINE_integer("iterations", 0, "Override the preset's iterations (0: keep).")
flags.DEFINE_integer("eval_episodes", 3, "Noise-free evaluation episodes per seed.")
flags.DEFINE_string("out", "benchmarks/results/e2c_pendulum.json", "Output JSON path.")

ENV = "pendulum_swingup"


def stats(returns: np.ndarray) -> dict:
    r = np.asarray(returns, float)
    return {"returns": r.tolist(), "mean": float(r.mean()), "min": float(r.min()),
            "max": float(r.max())}


def true_state_ilqr(eval_keys: jax.Array, steps: int) -> dict:
    from benchmarks.ilqr_vs_cem import episode_fn
    from mbjax import planners
    from mbjax.envs.registry import make

    env = make(ENV)
    planner = planners.make_planner("ilqr", horizon=25)
    rewards, _ = jax.jit(jax.vmap(episode_fn(env, planner, steps)))(eval_keys)
    return {**stats(np.asarray(rewards).sum(1)), "planner": "ilqr H=25 (defaults)"}


def random_actions(env, eval_keys: jax.Array, steps: int) -> dict:
    from mbjax import acting

    def one(key):
        policy = lambda c, obs, k: (c, jax.random.uniform(k, (1,), minval=-1, maxval=1), {})  # noqa: E731
        return acting.policy_return(env, lambda k: (), policy, key, steps)

    return stats(np.asarray(jax.jit(jax.vmap(one))(eval_keys)))


def main(argv):
    del argv
    from mbjax import acting
    from mbjax.agents import e2c
    from mbjax.agents.sweep import run_sweep
    from mbjax.compile_cache import enable_compilation_cache
    from mbjax.configs import to_dict

    enable_compilation_cache()
    config = e2c.preset(ENV, FLAGS.preset)
    if FLAGS.iterations:
        config = dataclasses.replace(config, iterations=FLAGS.iterations)
    env = e2c.make_env(config)
    steps = int(env.episode_length)
    seeds = list(range(FLAGS.seeds))
    eval_keys = jnp.stack([jax.random.PRNGKey(1000 + i) for i in range(FLAGS.eval_episodes)])

    t0 = time.perf_counter()
    reference = true_state_ilqr(eval_keys, steps)
    print("true-state iLQR", reference["mean"], flush=True)
    rand = random_actions(env, eval_keys, steps)
    print("random", rand["mean"], flush=True)

    final, records, _ = run_sweep(
        e2c.make_program(config), seeds, progress_fn=lambda rs: print(
            "iteration", rs[0]["iteration"], "mpc return", [round(r["episode_return"], 1)
                                                            for r in rs],
            "pred err", [round(r["prediction_error"], 3) for r in rs],
            "vs still", [round(r["prediction_vs_persistence"], 3) for r in rs],
            "goal corr", [round(r["goal_correlation"], 3) for r in rs], flush=True))
    train_s = time.perf_counter() - t0
    final_returns = []
    for i in range(len(seeds)):
        state_i = jax.tree_util.tree_map(lambda x, i=i: x[i], final)
        init_carry, policy = e2c.make_policy(config, state_i)
        run = jax.jit(jax.vmap(lambda k, p=policy, c=init_carry: acting.policy_return(
            env, c, p, k, steps)))
        final_returns.append(np.asarray(run(eval_keys)))
        print("seed", i, "final policy", final_returns[-1], flush=True)
    per_seed = np.array([r.mean() for r in final_returns])
    field = lambda name: np.array([[r[name] for r in rs] for rs in records], float)  # noqa: E731
    curve = field("episode_return")
    result = {
        "benchmark": "learning_e2c", "env": ENV, "device": device_info(),
        "note": "loaded shared 2-core CPU; wall times are not a speed benchmark",
        "preset": FLAGS.preset, "config": to_dict(config), "seeds": seeds,
        "eval_episodes_per_seed": FLAGS.eval_episodes, "episode_steps": steps,
        "true_state_ilqr": reference, "random_actions": rand,
        "e2c_final_policy": {**stats(per_seed), "per_seed_episodes":
                             [r.tolist() for r in final_returns]},
        "e2c_ratio_to_true_state_ilqr": float(per_seed.mean() / reference["mean"]),
        "e2c_curve": {"env_steps": field("env_steps")[0].tolist(),
                      "mpc_episode_return_per_seed": curve.tolist(),
                      "prediction_error_per_seed": field("prediction_error").tolist(),
                      "prediction_vs_persistence_per_seed":
                          field("prediction_vs_persistence").tolist(),
                      "goal_correlation_per_seed": field("goal_correlation").tolist(),
                      "loss_per_seed": field("loss").tolist(),
                      "goal_distance_per_seed": field("goal_distance").tolist()},
                "wall_s": time.perf_counter() - t0, "train_wall_s": train_s,
    }
    write_json(FLAGS.out, result)
    png = os.path.splitext(FLAGS.out)[0] + ".png"
    plot_curves(png, {"E2C latent iLQR-MPC (with exploration noise)": {
        "env_steps": result["e2c_curve"]["env_steps"], "return_mean": curve.mean(0).tolist(),
        "return_min": curve.min(0).tolist(), "return_max": curve.max(0).tolist(),
        "return_per_seed": curve.tolist()}},
        f"E2C from {config.image_size}px on {ENV}, {len(seeds)} seeds",
        hline=reference["mean"], hline_label="iLQR-MPC on the true state")
    print("wrote", FLAGS.out, png)


if __name__ == "__main__":
    app.run(main)
