"""PILCO on cartpole_swingup (issue 16): does it reach >= 150 of 200 within 15 episodes in at
least 2 of 3 seeds, in under 30 minutes on 2 cores?

    python -m benchmarks.learning_pilco --seeds=0,1,2 --preset=cpu \
        --out=benchmarks/results/pilco_cartpole_swingup.json

The seeds run as one vmapped program (`run_sweep`, float64 inside each episode as the preset
says), one compiled call per episode (collect an episode, refit the GP, optimise the policy),
so progress prints per episode. Writes, per seed, the episode returns, the predicted and the
real long-term cost, the GP's training MSE, the first episode reaching the threshold, the
criterion and the wall time after each episode to --out (after every episode, so a killed run
keeps what it measured), and the return curves to a PNG next to it.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from absl import app, flags

from benchmarks.common import device_info, write_json

FLAGS = flags.FLAGS
ENV = "cartpole_swingup"
flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds (one vmapped program).")
flags.DEFINE_string("preset", "cpu", "PILCO preset.")
flags.DEFINE_integer("episodes", 15, "Episodes in all (the first one random).")
flags.DEFINE_float("threshold", 150.0, "Return counted as solved.")
flags.DEFINE_string("out", "benchmarks/results/pilco_cartpole_swingup.json", "Output JSON.")
flags.DEFINE_integer("max_points", 0, "Override the preset's GP support size (0: keep).")
flags.DEFINE_string("checkpoint_dir", None, "Checkpoint every episode here (resumable).")
flags.DEFINE_bool("resume", False, "Continue from --checkpoint_dir.")


def plot(path: str, returns: np.ndarray, seeds: list[int], threshold: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for s, r in zip(seeds, returns, strict=True):
        ax.plot(np.arange(1, len(r) + 1), r, marker="o", ms=3, label=f"seed {s}")
    ax.axhline(threshold, color="k", ls="--", lw=1, label=f"{threshold:g}")
    ax.set_xlabel("episode (1 = random)")
    ax.set_ylabel("episode return (200 env steps)")
    ax.set_title(f"PILCO on {ENV}")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def summary(config, seeds: list[int], records: list[list[dict]]) -> dict:
    """The JSON of the episodes so far (records: per seed, one record per episode)."""
    from mbjax.configs import to_dict

    field = lambda name: np.array([[r[name] for r in rs] for rs in records])  # noqa: E731
    returns = field("episode_return")
    solved = returns >= FLAGS.threshold
    first = [int(np.argmax(s)) + 1 if s.any() else None for s in solved]
    return {
        "env": ENV, "action_repeat": config.action_repeat, "preset": FLAGS.preset,
        "config": to_dict(config), "seeds": seeds,
        "episodes_done": int(returns.shape[1]), "episodes_planned": config.episodes,
        "return_per_seed": returns.tolist(), "max_return_per_seed": returns.max(1).tolist(),
        "predicted_cost_per_seed": field("predicted_cost").tolist(),
        "episode_cost_per_seed": field("episode_cost").tolist(),
        "gp_train_mse_per_seed": field("gp_train_mse").tolist(),
        "first_episode_reaching_threshold": first, "threshold": FLAGS.threshold,
        "seeds_solved": int(sum(f is not None for f in first)),
        "criterion_2_of_3": bool(sum(f is not None for f in first) >= 2),
        "wall_s_after_episode": field("wall_time_s")[0].tolist(),
        "note": "all seeds vmapped in one program (one process) on a 2-core CPU; wall times "
                "include compilation",
        "device": device_info(),
    }


def main(argv: list[str]) -> None:
    del argv
    from mbjax.agents import pilco
    from mbjax.agents.sweep import run_sweep
    from mbjax.compile_cache import enable_compilation_cache

    enable_compilation_cache()
    config = dataclasses.replace(pilco.preset(ENV, FLAGS.preset), episodes=FLAGS.episodes)
    if FLAGS.max_points:
        config = dataclasses.replace(
            config, gp=dataclasses.replace(config.gp, max_points=FLAGS.max_points))
    seeds = [int(s) for s in FLAGS.seeds]
    history: list[list[dict]] = [[] for _ in seeds]

    def progress(last: list[dict]) -> None:
        for h, r in zip(history, last, strict=True):
            h.append(r)
        print(f"episode {last[0]['episode'] + 1}: returns "
              f"{[round(r['episode_return'], 1) for r in last]} predicted cost "
              f"{[round(r['predicted_cost'], 2) for r in last]} ({last[0]['wall_time_s']:.0f} s)",
              flush=True)
        result = summary(config, seeds, history)
        write_json(FLAGS.out, result)  # partial results survive a kill
        plot(FLAGS.out.replace(".json", ".png"), np.asarray(result["return_per_seed"]), seeds,
             FLAGS.threshold)

    def restored(records: list[list[dict]]) -> None:
        history[:] = [list(r) for r in records]

    run_sweep(pilco.make_program(config), seeds, progress_fn=progress,
              checkpoint_dir=FLAGS.checkpoint_dir, resume=FLAGS.resume,
              meta={"algo": "pilco", "config": dataclasses.asdict(config)}, on_resume=restored)
    result = summary(config, seeds, history)
    print(f"max return per seed {np.round(result['max_return_per_seed'], 1).tolist()}; solved "
          f"{result['seeds_solved']} of {len(seeds)}")


if __name__ == "__main__":
    app.run(main)
