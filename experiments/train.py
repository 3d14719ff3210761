"""One training run: `python -m experiments.train --algo=pets --env=cartpole_swingup`.

Any registered algorithm (`mbjax.agents.names()`) runs through its `Algorithm` record and the
one host driver (`mbjax.agents.driver.train`). Writes to --output_dir (a new or empty
directory): metrics.jsonl (one line per iteration: an episode for PETS, an epoch for MBPO/SAC),
TensorBoard event files, config.json (once the env and program build), curve.png and
checkpoints/ (full state after every iteration; --resume continues from there exactly, after
checking the flags against config.json and the checkpoint). Ctrl-C stops with exit code 130;
--resume continues. `python -m experiments.evaluate --run_dir=...` evaluates the trained policy.
Config fields are overridden with `--config.<field>=<value>`, e.g.
`--config.num_episodes=5 --config.model.hidden_sizes=100,100`
`--config.planner_config.population=100`.
"""

from __future__ import annotations

import os
from typing import Any

from absl import flags

from experiments import cli

FLAGS = flags.FLAGS
cli.define_run_flags("Run directory, new or empty (default runs/<algo>_<env>_s<seed>).",
                     "Continue from the newest checkpoint in --output_dir.")
flags.DEFINE_integer("seed", 0, "Random seed, an int in [0, 2**32 - 1].")
flags.adopt_module_key_flags(cli)  # --help lists the shared run flags defined in cli.py


def run(overrides: dict[str, str]) -> None:
    from mbjax import configs, runs

    algo, config = cli.resolve(FLAGS.algo, FLAGS.env, FLAGS.preset, overrides)
    runs.check_seed(FLAGS.seed)
    out = cli.output_dir(FLAGS.output_dir, os.path.join(
        "runs", f"{FLAGS.algo}_{FLAGS.env.replace('/', '-')}_s{FLAGS.seed}"
    ))
    run_info = {"algo": FLAGS.algo, "env": FLAGS.env, "seed": FLAGS.seed,
                "config": configs.to_dict(config)}
    program, resume, has_config = cli.prepare_run_dir(
        out, run_info, lambda: algo.make_program(config), FLAGS.resume
    )
    records = _train(algo, config, program, out, run_info, resume, has_config)
    _finish(algo, out, records)


def _train(algo: Any, config: Any, program: Any, out: str, run_info: dict, resume: bool,
           has_config: bool) -> list[dict]:
    """Runs the driver with metrics.jsonl, TensorBoard, progress lines and checkpoints in `out`;
    Ctrl-C becomes `cli.Interrupted` saying how far the run got."""
    from mbjax import runs
    from mbjax.agents import driver
    from mbjax.logging import RunLog, format_record_line

    log = RunLog(out)
    bar = cli.progress(algo, program.num_iterations, f"{FLAGS.algo} {FLAGS.env}", FLAGS.quiet)
    done = [0]  # iterations completed (restored or run), for the Ctrl-C message

    def on_resume(records):
        if not has_config:  # config.json was lost; the checkpoint's own meta matched the flags
            runs.write_run_info(out, run_info)
        log.resume_from(records)
        done[0] = len(records)
        bar.update(len(records))
        if not FLAGS.quiet:
            bar.write(f"resumed from {algo.iteration_unit} {len(records)} in {out}")

    def progress(record):
        log.write(record)
        done[0] += 1
        bar.update(1)
        if not FLAGS.quiet:
            bar.write(format_record_line(record, algo.iteration_unit))
        if stop.requested and done[0] < program.num_iterations:
            # Ctrl-C: this iteration is checkpointed and logged; stop here
            raise KeyboardInterrupt

    stop = cli.StopRequest(f"Ctrl-C: stopping once this {algo.iteration_unit} is saved "
                           "(Ctrl-C again to stop at once)")
    try:
        with stop:
            _, _, records = driver.train(
                algo, FLAGS.env, config, seed=FLAGS.seed, progress_fn=progress, program=program,
                checkpoint_dir=os.path.join(out, runs.CHECKPOINT_DIR), resume=resume,
                on_resume=on_resume, meta=run_info,
            )
    except KeyboardInterrupt:
        raise cli.Interrupted(
            f"stopped after {done[0]} of {program.num_iterations} {algo.iteration_units}; "
            f"{out} keeps them: rerun the same command with --resume to continue"
        ) from None
    finally:
        bar.close()
        log.close()
    return records


def _finish(algo: Any, out: str, records: list[dict]) -> None:
    """curve.png and the one-line summary."""
    from mbjax.logging import plot_curve

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


if __name__ == "__main__":
    cli.launch(run)
