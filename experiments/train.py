"""One training run: `python -m experiments.train --algo=pets --env=cartpole_swingup`.

Any registered algorithm (`mbjax.agents.names()`) runs through its `Algorithm` record and the
one host driver (`mbjax.agents.driver.train`). Writes to --output_dir: metrics.jsonl (one line
per iteration: an episode for PETS, an epoch for MBPO), config.json, curve.png and checkpoints/
(full state after every iteration; --resume continues from there exactly).
Config fields are overridden with `--config.<field>=<value>`, e.g.
`--config.num_episodes=5 --config.model.hidden_sizes=100,100`
`--config.planner_config.population=100`.
"""

from __future__ import annotations

import json
import os

from absl import flags

from experiments import cli

FLAGS = flags.FLAGS
flags.DEFINE_string("algo", "pets", cli.algo_help())
flags.DEFINE_string("env", "cartpole_swingup", "Environment name (see mbjax.envs.names()).")
flags.DEFINE_string("preset", "cpu", "Config preset: cpu, paper or test.")
flags.DEFINE_integer("seed", 0, "Random seed.")
flags.DEFINE_string("output_dir", None, "Run directory (default runs/<algo>_<env>_s<seed>).")
flags.DEFINE_bool("resume", False, "Continue from the newest checkpoint in --output_dir.")
flags.DEFINE_bool("quiet", False, "No progress bar or per-iteration lines.")


def run(overrides: dict[str, str]) -> None:
    from mbjax import agents, configs, envs
    from mbjax.agents import driver
    from mbjax.logging import MetricsWriter, format_episode_line, plot_curve

    algo = agents.get(FLAGS.algo)
    envs.check_name(FLAGS.env)
    if FLAGS.seed < 0:
        raise ValueError(f"--seed={FLAGS.seed} is invalid; allowed: an int >= 0")
    config = cli.build_config(algo, FLAGS.env, FLAGS.preset, overrides)
    out = FLAGS.output_dir or os.path.join(
        "runs", f"{FLAGS.algo}_{FLAGS.env.replace('/', '-')}_s{FLAGS.seed}"
    )
    run_info = {"algo": FLAGS.algo, "env": FLAGS.env, "seed": FLAGS.seed,
                "config": configs.to_dict(config)}
    _prepare_output_dir(out, run_info)
    writer = MetricsWriter(os.path.join(out, "metrics.jsonl"))
    program = algo.make_program(config)
    bar = cli.progress(algo, program.num_iterations, f"{FLAGS.algo} {FLAGS.env}", FLAGS.quiet)

    def on_resume(records):
        writer.rewrite(records)
        bar.update(len(records))
        if not FLAGS.quiet:
            bar.write(f"resumed from {algo.iteration_unit} {len(records)} in {out}")

    def progress(record):
        writer.write(record)
        bar.update(1)
        if not FLAGS.quiet:
            bar.write(format_episode_line(record))

    _, _, records = driver.train(
        algo, FLAGS.env, config, seed=FLAGS.seed, progress_fn=progress, program=program,
        checkpoint_dir=os.path.join(out, "checkpoints"), resume=FLAGS.resume, on_resume=on_resume,
    )
    bar.close()
    plot_curve(
        os.path.join(out, "curve.png"),
        [r["env_steps"] for r in records],
        [[r["episode_return"] for r in records]],
        title=f"{FLAGS.algo} on {FLAGS.env} (seed {FLAGS.seed})",
        best_so_far=True,
    )
    final = records[-1]
    print(
        f"done: {len(records)} {algo.iteration_units}, {final['env_steps']} env steps, last "
        f"return {final['episode_return']:.2f}, best {final['best_return']:.2f}, "
        f"{final['wall_time_s']:.1f} s -> {out}"
    )


def _prepare_output_dir(out: str, run_info: dict) -> None:
    """Creates `out` and writes config.json; refuses to resume with different flags or to
    overwrite a finished or interrupted run without --resume."""
    from mbjax.logging import write_json_atomic

    os.makedirs(out, exist_ok=True)
    config_path = os.path.join(out, "config.json")
    if FLAGS.resume and os.path.exists(config_path):
        with open(config_path) as f:
            saved = json.load(f)
        if saved != json.loads(json.dumps(run_info)):
            raise ValueError(
                f"--resume: the flags differ from the run in {out!r} (see its config.json); "
                "resume with the same --algo/--env/--seed/--preset and overrides"
            )
    elif not FLAGS.resume and os.path.exists(os.path.join(out, "metrics.jsonl")):
        raise ValueError(
            f"{out!r} already holds a run; pass --resume to continue it or choose --output_dir"
        )
    write_json_atomic(config_path, run_info)


if __name__ == "__main__":
    cli.launch(run)
