"""A seed sweep as one vmapped program sharded over all local devices.

`python -m experiments.sweep --algo=pets --env=cartpole_swingup --seeds=8`
Each iteration (an episode for PETS, an epoch for MBPO) is one compiled call of the vmapped
iteration function over all seeds, with the seed axis sharded across `jax.local_devices()`
(jax.sharding), so a progress bar can follow iterations.
Writes to --output_dir (a new or empty directory): config.json (once the program builds; it
lists the seeds), seed_<s>/metrics.jsonl and TensorBoard event files per seed, checkpoints/ (the
vmapped state and every seed's records after every iteration), summary.json and curve.png
(mean/min/max). A killed sweep continues with --resume to exactly the metrics of an
uninterrupted one; --resume refuses a directory holding anything but this sweep.
With 4 forced CPU devices: XLA_FLAGS=--xla_force_host_platform_device_count=4.
"""

from __future__ import annotations

import os
from typing import Any

from absl import flags

from experiments import cli

FLAGS = flags.FLAGS
cli.define_run_flags("Sweep directory (default runs/sweep_<algo>_<env>).",
                     "Continue the sweep from its newest checkpoint.")
flags.DEFINE_integer("seeds", 4, "Number of seeds (seed_start, seed_start+1, ...).")
flags.DEFINE_integer("seed_start", 0, "First seed.")
flags.adopt_module_key_flags(cli)  # --help lists the shared run flags defined in cli.py


def run(overrides: dict[str, str]) -> None:
    from mbjax import configs, runs

    algo, config = cli.resolve(FLAGS.algo, FLAGS.env, FLAGS.preset, overrides)
    seeds = runs.check_seed_range(FLAGS.seed_start, FLAGS.seeds)
    out = cli.output_dir(FLAGS.output_dir, os.path.join(
        "runs", f"sweep_{FLAGS.algo}_{FLAGS.env.replace('/', '-')}"
    ))
    sweep_info = {"algo": FLAGS.algo, "env": FLAGS.env, "seeds": seeds,
                  "config": configs.to_dict(config)}
    # Guards before anything is written (a sweep never mixes with another run's files); the
    # seeds' metrics count as progress, so a sweep that lost its checkpoints is not restarted.
    program, resume, has_config = cli.prepare_run_dir(
        out, sweep_info, lambda: algo.make_program(config), FLAGS.resume,
        progress_dirs=tuple(os.path.join(out, f"seed_{s}") for s in seeds),
    )
    records, info = _sweep(algo, program, seeds, out, sweep_info, resume, has_config)
    _finish(out, seeds, records, info)


def _sweep(algo: Any, program: Any, seeds: list[int], out: str, sweep_info: dict, resume: bool,
           has_config: bool) -> tuple[list[list[dict]], dict]:
    """Runs `run_sweep` with per-seed metrics.jsonl/TensorBoard, progress lines and checkpoints
    in `out`; Ctrl-C becomes `cli.Interrupted` saying how far the sweep got."""
    import numpy as np

    from mbjax import runs
    from mbjax.agents.program import run_sweep
    from mbjax.logging import RunLog

    logs = {s: RunLog(os.path.join(out, f"seed_{s}")) for s in seeds}
    if not resume:  # a restart after a kill before the first checkpoint; on resume, on_resume
        for log in logs.values():  # rewrites them once the checkpoint has restored
            log.metrics.rewrite([])
    bar = cli.progress(algo, program.num_iterations, f"sweep {FLAGS.algo} {FLAGS.env}",
                       FLAGS.quiet)
    done = [0]  # iterations completed (restored or run): the console lines and Ctrl-C message

    def on_resume(per_seed_records):
        if not has_config:  # config.json was lost; the checkpoint's own meta matched the flags
            runs.write_run_info(out, sweep_info)
        for s, records in zip(seeds, per_seed_records, strict=True):
            logs[s].resume_from(records)
        done[0] = len(per_seed_records[0])
        bar.update(done[0])
        if not FLAGS.quiet:
            bar.write(f"resumed from {algo.iteration_unit} {done[0]} in {out}")

    def progress(per_seed_records):
        returns = []
        for s, record in zip(seeds, per_seed_records, strict=True):
            logs[s].write(record)
            returns.append(record["episode_return"])
        done[0] += 1
        bar.update(1)
        if not FLAGS.quiet:
            bar.write(
                f"{algo.iteration_unit}={done[0] - 1}  env_steps={per_seed_records[0]['env_steps']}"
                f"  return mean={np.mean(returns):.2f} min={np.min(returns):.2f} "
                f"max={np.max(returns):.2f}"
            )

    try:
        _, records, info = run_sweep(
            program, seeds, progress_fn=progress, checkpoint_dir=os.path.join(
                out, runs.CHECKPOINT_DIR), resume=resume, meta=sweep_info, on_resume=on_resume,
            on_notice=lambda message: print(f"notice: {message}"),
        )
    except KeyboardInterrupt:
        raise cli.Interrupted(
            f"stopped after {done[0]} of {program.num_iterations} {algo.iteration_units}; {out} "
            "keeps them: rerun the same command with --resume to continue"
        ) from None
    finally:
        bar.close()
        for log in logs.values():
            log.close()
    return records, info


def _finish(out: str, seeds: list[int], records: list[list[dict]], info: dict) -> None:
    """curve.png, summary.json and the one-line summary."""
    import numpy as np

    from mbjax.logging import plot_curve, write_json_atomic

    returns = np.array([[r["episode_return"] for r in recs] for recs in records])
    steps = [r["env_steps"] for r in records[0]]
    plot_curve(os.path.join(out, "curve.png"), steps, returns,
               title=f"{FLAGS.algo} on {FLAGS.env}, {len(seeds)} seeds")
    write_json_atomic(os.path.join(out, "summary.json"), {
        **info, "seeds": seeds, "env_steps": steps,
        "return_mean": returns.mean(0), "return_min": returns.min(0),
        "return_max": returns.max(0),
    })
    print(f"done: {len(seeds)} seeds on {info['num_devices']} device(s), final return mean "
          f"{returns[:, -1].mean():.2f} -> {out}")


if __name__ == "__main__":
    cli.launch(run)
