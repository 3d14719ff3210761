"""MCTS (mctx) with the TRUE model on `cartpole_discrete`: episode lengths and wall time.

10 episodes (vmapped, one jit) per setting: algorithm in {gumbel_muzero, muzero} x
num_simulations in {16, 32}; leaf value = mean return of random rollouts of the true env.
Issue 17's floor: mean episode length >= 475 of 500. Writes benchmarks/results/mcts_cartpole.json.

    python -m benchmarks.mcts_cartpole [--episodes=10] [--rollout_steps=100] [--num_rollouts=4]
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import numpy as np

from benchmarks import common
from mbjax import envs
from mbjax.planners import mcts

OUT = os.path.join(os.path.dirname(__file__), "results", "mcts_cartpole.json")


def measure(env, config: mcts.MCTSConfig, episodes: int, seed: int) -> dict:
    """Runs `episodes` episodes of MCTS; returns lengths (mean/min/max/all) and wall seconds."""
    act = mcts.make_mcts_policy(env, config)
    run = jax.jit(jax.vmap(lambda k: mcts.run_episode(env, act, k)))
    keys = jax.random.split(jax.random.PRNGKey(seed), episodes)
    t0 = time.perf_counter()
    lengths = np.asarray(run(keys)["length"])
    wall = time.perf_counter() - t0
    return {"algorithm": config.algorithm, "num_simulations": config.num_simulations,
            "rollout_steps": config.rollout_steps, "num_rollouts": config.num_rollouts,
            "discount": config.discount, "episodes": episodes,
            "mean_length": float(lengths.mean()), "min_length": float(lengths.min()),
            "max_length": float(lengths.max()), "lengths": lengths.tolist(),
            "wall_s_including_compile": wall, "meets_475_floor": bool(lengths.mean() >= 475)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--rollout_steps", type=int, default=100)
    parser.add_argument("--num_rollouts", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=OUT)
    args = parser.parse_args()
    env = envs.make("cartpole_discrete")
    results = []
    for algorithm in ("gumbel_muzero", "muzero"):
        for sims in (16, 32):
            config = mcts.MCTSConfig(num_simulations=sims, algorithm=algorithm,
                                     rollout_steps=args.rollout_steps,
                                     num_rollouts=args.num_rollouts)
            results.append(measure(env, config, args.episodes, args.seed))
            print(results[-1])
    common.write_json(args.out, {"device": common.device_info(), "results": results})


if __name__ == "__main__":
    main()
