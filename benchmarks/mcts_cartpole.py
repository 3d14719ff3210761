"""MCTS (mctx) on `cartpole_discrete`: episode lengths with the TRUE model and with a LEARNED one.

--part=true: 10 episodes (vmapped, one jit) per setting: the uniform-rollout leaf value (the
  earlier default, which held 418/500) and the lookahead leaf value (mbjax.planners.mcts's
  docstring says why), MuZero PUCT at 16 and 32 simulations. Issue 17's floor: mean episode
  length >= 475 of 500. Also the uniform value's flatness in the cart position (the cause).
  Writes benchmarks/results/mcts_cartpole.json.
--part=learned: the `mcts` agent, model="learned" (cpu preset: 1 random episode, then refit
  the ensemble and search, 16 simulations, uniform-rollout leaves through the ensemble), seeds
  vmapped in one program. Floor: an episode >= 400 steps within 10 episodes.
  Writes benchmarks/results/mcts_cartpole_learned.json.

    python -m benchmarks.mcts_cartpole --part=true [--episodes=10]
    python -m benchmarks.mcts_cartpole --part=learned [--seeds=3] [--episodes=10]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import common
from mbjax import envs
from mbjax.agents import mcts as mcts_agent
from mbjax.agents.program import make_pure_train
from mbjax.planners import mcts

RESULTS = os.path.join(os.path.dirname(__file__), "results")


def measure(env, config: mcts.MCTSConfig, episodes: int, seed: int) -> dict:
    """Runs `episodes` episodes of MCTS with the true env; lengths (mean/min/max/all)."""
    act = mcts.make_mcts_policy(env, config)
    run = jax.jit(jax.vmap(lambda k: mcts.run_episode(env, act, k)))
    keys = jax.random.split(jax.random.PRNGKey(seed), episodes)
    t0 = time.perf_counter()
    lengths = np.asarray(run(keys)["length"])
    return {**dataclasses.asdict(config), "episodes": episodes, "seed": seed,
            "mean_length": float(lengths.mean()), "min_length": float(lengths.min()),
            "max_length": float(lengths.max()), "lengths": lengths.tolist(),
            "wall_s_including_compile_loaded_cpu": time.perf_counter() - t0,
            "meets_475_floor": bool(lengths.mean() >= 475)}


def uniform_value_vs_position(env) -> list[dict]:
    """V_uniform (256 rollouts of 200 steps) at th = thdot = 0 for several x, xdot."""
    config = mcts.MCTSConfig(rollout_policy="uniform", rollout_steps=200, num_rollouts=256)
    value = jax.jit(mcts.make_leaf_value(mcts.env_search_model(env), config))
    s0 = env.reset(jax.random.PRNGKey(0))
    rows = []
    for x in (0.0, 1.0, 1.8, 2.0, 2.2):
        for xdot in (0.0, 0.3):
            q = jnp.array([x, xdot, 0.0, 0.0], jnp.float32)
            v = value(None, None, s0.replace(pipeline_state=q, obs=q), jax.random.PRNGKey(1),
                      jnp.zeros((2,), bool), 1.0)
            rows.append({"x": x, "xdot": xdot, "uniform_value": float(v)})
    return rows


def run_true(args) -> None:
    env = envs.make("cartpole_discrete")
    results = []
    settings = [dict(rollout_policy="uniform", rollout_steps=100, num_rollouts=4,
                     common_random_numbers=False, num_simulations=16)]
    settings += [dict(rollout_policy="lookahead", num_simulations=s) for s in (16, 32)]
    for kw in settings:
        results.append(measure(env, mcts.MCTSConfig(**kw), args.episodes, args.seed))
        print({k: results[-1][k] for k in ("rollout_policy", "num_simulations", "mean_length",
                                           "min_length", "lengths")}, flush=True)
    common.write_json(args.out or os.path.join(RESULTS, "mcts_cartpole.json"), {
        "device": common.device_info(), "note": "loaded 2-core CPU (wall times meaningless)",
        "uniform_value_vs_position": uniform_value_vs_position(env), "results": results})


def run_learned(args) -> None:
    config = mcts_agent.learned(mcts_agent.preset("cartpole_discrete", "cpu"))
    config = dataclasses.replace(config, num_episodes=args.episodes)
    train = jax.jit(jax.vmap(make_pure_train(mcts_agent.make_program(config))))
    keys = jax.vmap(jax.random.PRNGKey)(jnp.arange(args.seed, args.seed + args.seeds))
    t0 = time.perf_counter()
    _, metrics = train(keys)
    lengths = np.asarray(metrics.episode_length)  # [seeds, episodes]
    best = lengths.max(axis=1)
    payload = {
        "device": common.device_info(), "note": "loaded 2-core CPU (wall times meaningless)",
        "config": dataclasses.asdict(config), "seeds": list(range(args.seed,
                                                                   args.seed + args.seeds)),
        "episode_lengths": lengths.tolist(),
        "best_length_per_seed": best.tolist(), "min_over_seeds_of_best": float(best.min()),
        "max_over_seeds_of_best": float(best.max()),
        "final_length_mean": float(lengths[:, -1].mean()),
        "model_holdout_mse": [[None if np.isnan(v) else float(v) for v in row]
                              for row in np.asarray(metrics.model_holdout_mse)],
        "meets_400_floor_every_seed": bool(best.min() >= 400),
        "wall_s_including_compile_loaded_cpu": time.perf_counter() - t0}
    print({k: payload[k] for k in ("episode_lengths", "best_length_per_seed")}, flush=True)
    out = args.out or os.path.join(RESULTS, "mcts_cartpole_learned.json")
    common.write_json(out, payload)
    plot_learned(payload, out.replace(".json", ".png"))


def plot_learned(payload: dict, path: str) -> None:
    """Episode length per episode, one line per seed, with the 400 floor."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    for seed, lengths in zip(payload["seeds"], payload["episode_lengths"], strict=True):
        ax.plot(range(1, len(lengths) + 1), lengths, marker="o", label=f"seed {seed}")
    ax.axhline(400, color="gray", ls="--", lw=1, label="issue 17 floor")
    ax.set(xlabel="episode (1: random actions)", ylabel="episode length (max 500)",
           title="MCTS with a learned ensemble, cartpole_discrete")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("true", "learned"), default="true")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    (run_true if args.part == "true" else run_learned)(args)


if __name__ == "__main__":
    main()
