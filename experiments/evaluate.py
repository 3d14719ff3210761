"""Evaluate a trained run: `python -m experiments.evaluate --run_dir=runs/pets_point_mass_s0`.

Loads the run's policy (`mbjax.load_policy`: its config.json and newest checkpoint), runs
`--episodes` episodes of the run's env at once (vmapped; PETS plans with its learned model at
every step, SAC/MBPO act with the deterministic actor unless --stochastic), prints the mean, min
and max return in one line and writes `<run_dir>/evaluation.json` (or `--out`). For an env that
renders (`mbjax.render.renders`), the first evaluation episode is also written as a video,
`evaluation.gif` beside the JSON (`--video=false` to skip; `--video_size` pixels).
"""

from __future__ import annotations

import os
from typing import Any

from absl import flags

from experiments import cli

FLAGS = flags.FLAGS
flags.DEFINE_string("run_dir", None, "A run directory written by experiments.train.")
flags.DEFINE_integer("episodes", 10, "Number of evaluation episodes (run in parallel).")
flags.DEFINE_integer("seed", 0, "Seed of the evaluation episodes (resets and policy noise).")
flags.DEFINE_bool("stochastic", False, "SAC/MBPO: sample actions instead of the actor's mode.")
flags.DEFINE_string("out", None, "Where to write the JSON (default <run_dir>/evaluation.json).")
flags.DEFINE_bool("video", True, "Write the first episode as evaluation.gif beside the JSON "
                  "(envs that render).")
flags.DEFINE_integer("video_size", 128, "Video frame size in pixels.")

EVALUATION_FILE = "evaluation.json"


def run(overrides: dict[str, str]) -> None:
    import numpy as np

    from mbjax import runs, validation
    from mbjax.logging import write_json_atomic

    if overrides:
        raise ValueError(f"--config.{next(iter(overrides))} is invalid; allowed: no --config "
                         "overrides (evaluation uses the run's own config)")
    if not FLAGS.run_dir:
        raise ValueError("--run_dir is required: a run directory written by experiments.train")
    validation.check_int("--episodes", FLAGS.episodes, 1, 10_000)
    runs.check_seed(FLAGS.seed)
    out = FLAGS.out or os.path.join(FLAGS.run_dir, EVALUATION_FILE)
    if os.path.isdir(out):
        raise validation.invalid("--out", out, "a file path (it is a directory)")
    validation.check_int("--video_size", FLAGS.video_size, 16, 1024)
    kwargs = {"deterministic": False} if FLAGS.stochastic else {}
    policy, info = runs.load_policy(FLAGS.run_dir, **kwargs)
    returns = np.asarray(_returns(policy, info, FLAGS.episodes, FLAGS.seed))
    video = _video(policy, info, FLAGS.seed, out) if FLAGS.video else None
    summary = {
        "run_dir": FLAGS.run_dir, "algo": info["algo"], "env": info["env"],
        "train_seed": info["seed"], "iteration": info["iteration"], "unit": info["unit"],
        "env_steps": info["env_steps"], "seed": FLAGS.seed, "episodes": FLAGS.episodes,
        "stochastic": FLAGS.stochastic, "returns": returns, "return_mean": returns.mean(),
        "return_min": returns.min(), "return_max": returns.max(), "video": video,
    }
    write_json_atomic(out, summary)
    print(
        f"{info['algo']} on {info['env']} after {info['iteration']} {info['unit']}s: "
        f"{FLAGS.episodes} episodes, return mean={returns.mean():.2f} min={returns.min():.2f} "
        f"max={returns.max():.2f} -> {out}"
    )


def _env(algo: str, config: Any) -> tuple[Any, int]:
    """The run's env and its agent steps per episode."""
    import math

    from mbjax import agents

    env = agents.get(algo).env_of(config)
    return env, math.ceil(env.episode_length / getattr(config, "action_repeat", 1))


def _returns(policy: Any, info: dict, episodes: int, seed: int) -> Any:
    """Undiscounted returns [episodes] of the policy on the run's env, all episodes vmapped."""
    import jax

    from mbjax import acting

    env, num_steps = _env(info["algo"], info["config"])
    keys = jax.random.split(jax.random.PRNGKey(seed), episodes)
    one = lambda key: acting.policy_return(env, *policy, key, num_steps)  # noqa: E731
    return jax.jit(jax.vmap(one))(keys)


def _video(policy: Any, info: dict, seed: int, out: str) -> str | None:
    """Writes the first evaluation episode (the one scored first: same key) as a GIF beside
    `out`; None for an env that does not render."""
    import jax

    from mbjax import render

    env, num_steps = _env(info["algo"], info["config"])
    if not render.renders(env):
        return None
    key = jax.random.split(jax.random.PRNGKey(seed), FLAGS.episodes)[0]
    frames, length = jax.jit(
        lambda k: render.policy_frames(env, *policy, k, num_steps, FLAGS.video_size))(key)
    fps = max(1.0, round(1.0 / (env.dt * getattr(info["config"], "action_repeat", 1))))
    path = os.path.splitext(out)[0] + ".gif"
    return render.write_video(path, jax.device_get(frames)[: int(length) + 1], fps=fps)


if __name__ == "__main__":
    cli.launch(run)
