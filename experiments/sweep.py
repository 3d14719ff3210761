"""A sweep over seeds, or over a hyperparameter grid x seeds, as one vmapped, sharded program.

    python -m experiments.sweep --algo=pets --env=cartpole_swingup --seeds=8
    python -m experiments.sweep --algo=pets --env=cartpole_swingup --seeds=3 \
        --grid.planner_config.alpha=0.05,0.1,0.2 --grid.model.learning_rate=1e-3,3e-4

Each iteration (an episode for PETS, an epoch for MBPO/SAC) is one compiled call of the vmapped
iteration function over all runs (seeds, or every grid point x seed), the run axis sharded over
all devices (`mbjax.agents.sweep`), so a progress bar can follow iterations. `--grid.<field>`
takes the numeric hyperparameters that are leaves of the run state (`mbjax.grid`: planner
hyperparameters, learning rates, SAC's discount/tau/...); one compiled program serves every grid
point. Structural fields (horizon, network sizes, the planner's name) are refused: run one sweep
per value.

Writes to --output_dir (a new or empty directory): config.json (once the program builds; it lists
the seeds and the grid), per run metrics.jsonl and TensorBoard event files (seed_<s>/, or
cell_<i>__<field>=<value>.../seed_<s>/ with the cell's config.json for a grid), checkpoints/ (the
vmapped state and every run's records after every iteration), summary.json and curve.png
(mean/min/max over seeds, per cell for a grid), and for a grid grid_summary.json,
grid_summary.txt (a table of the final return per grid point, mean/min/max over seeds) and
grid.png. A killed sweep continues with --resume to exactly the metrics of an uninterrupted one;
--resume refuses a directory holding anything but this sweep.

Several processes or hosts: start the same command on every process with
--coordinator_address=<host:port> --num_processes=<n> --process_id=<i> (or the variables
JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID, or a cluster jax.distributed
detects: SLURM, Open MPI, Cloud TPU). The runs are sharded over every process's devices and
process 0 writes every file, once; --output_dir must be a path all processes see.
With 4 CPU devices in one process: XLA_FLAGS=--xla_force_host_platform_device_count=4.
"""

from __future__ import annotations

import os
import sys
from typing import Any, NamedTuple

from absl import flags

from experiments import cli

FLAGS = flags.FLAGS
cli.define_run_flags("Sweep directory (default runs/sweep_<algo>_<env>).",
                     "Continue the sweep from its newest checkpoint.")
flags.DEFINE_integer("seeds", 4, "Number of seeds (seed_start, seed_start+1, ...).")
flags.DEFINE_integer("seed_start", 0, "First seed.")
cli.define_distributed_flags()
flags.adopt_module_key_flags(cli)  # --help lists the shared run flags defined in cli.py
GRID: dict[str, str] = {}  # --grid.<field>=<values>, taken out of argv before absl parses it


class Layout(NamedTuple):
    """Where each run of the sweep goes: runs are cells x seeds, cell-major."""

    seeds: list[int]  # the seed of every run
    dirs: list[str]  # the directory of every run
    cell_dirs: list[str]  # one per grid cell ([out] without a grid)


def run(overrides: dict[str, str]) -> None:
    from mbjax import configs, grid, runs

    distributed = cli.init_distributed()
    algo, config = cli.resolve(FLAGS.algo, FLAGS.env, FLAGS.preset, overrides)
    sweep_grid = _make_grid(algo, config, overrides)
    seeds = runs.check_seed_range(FLAGS.seed_start, FLAGS.seeds)
    out = cli.output_dir(FLAGS.output_dir, os.path.join(
        "runs", f"sweep_{FLAGS.algo}_{FLAGS.env.replace('/', '-')}"
    ))
    layout = _layout(out, seeds, sweep_grid)
    sweep_info = {"algo": FLAGS.algo, "env": FLAGS.env, "seeds": seeds,
                  "config": configs.to_dict(config)}
    if sweep_grid is not None:
        sweep_info["grid"] = sweep_grid.to_dict()

    def build():
        program = algo.make_program(config)
        return program if sweep_grid is None else grid.grid_program(program, sweep_grid.setters)

    # Guards before anything is written (a sweep never mixes with another run's files); the
    # runs' metrics count as progress, so a sweep that lost its checkpoints is not restarted.
    program, resume, has_config = cli.prepare_run_dir(
        out, sweep_info, build, FLAGS.resume, progress_dirs=tuple(layout.dirs),
        writer=distributed.writer,
    )
    if sweep_grid is not None and distributed.writer:
        for cell, cell_dir in zip(sweep_grid.cells, layout.cell_dirs, strict=True):
            cell_config = configs.to_dict(grid.cell_config(config, cell))
            runs.write_run_info(cell_dir, {**sweep_info, "grid_cell": cell, "config": cell_config})
    records, info = _sweep(algo, program, layout, sweep_grid, out, sweep_info, resume,
                           has_config, distributed.writer)
    if distributed.writer:
        _finish(out, layout, sweep_grid, records, info)


def _make_grid(algo: Any, config: Any, overrides: dict[str, str]) -> Any:
    """The `--grid.*` grid (None without such flags); a field both overridden and gridded is
    refused (which value would a cell's config record?)."""
    from mbjax import grid

    if not GRID:
        return None
    for path in GRID:
        if path in overrides:
            raise ValueError(f"--grid.{path} is invalid together with --config.{path}: give the "
                             "field either a value or a grid")
    return grid.make_grid(algo, config, GRID)


def _layout(out: str, seeds: list[int], sweep_grid: Any) -> Layout:
    from mbjax import grid

    if sweep_grid is None:
        return Layout(seeds, [os.path.join(out, f"seed_{s}") for s in seeds], [out])
    cell_dirs = [os.path.join(out, grid.cell_name(i, cell))
                 for i, cell in enumerate(sweep_grid.cells)]
    return Layout([s for _ in cell_dirs for s in seeds],
                  [os.path.join(d, f"seed_{s}") for d in cell_dirs for s in seeds], cell_dirs)


def _progress_line(algo: Any, done: int, records: list[dict], layout: Layout) -> str:
    import numpy as np

    returns = np.array([r["episode_return"] for r in records])
    line = (f"{algo.iteration_unit}={done - 1}  env_steps={records[0]['env_steps']}  return "
            f"mean={returns.mean():.2f} min={returns.min():.2f} max={returns.max():.2f}")
    if len(layout.cell_dirs) > 1:
        per_cell = returns.reshape(len(layout.cell_dirs), -1).mean(axis=1)
        best = int(np.argmax(per_cell))
        line += f"  best cell {os.path.basename(layout.cell_dirs[best])} ({per_cell[best]:.2f})"
    return line


def _sweep(algo: Any, program: Any, layout: Layout, sweep_grid: Any, out: str, sweep_info: dict,
           resume: bool, has_config: bool, writer: bool) -> tuple[list[list[dict]], dict]:
    """Runs `run_sweep` with per-run metrics.jsonl/TensorBoard, progress lines and checkpoints
    in `out` (files and console from the writing process only); Ctrl-C becomes
    `cli.Interrupted` saying how far the sweep got."""
    from mbjax import runs
    from mbjax.agents.sweep import run_sweep
    from mbjax.logging import RunLog

    logs = [RunLog(d) for d in layout.dirs] if writer else []
    if not resume:  # a restart after a kill before the first checkpoint; on resume, on_resume
        for log in logs:  # rewrites them once the checkpoint has restored
            log.metrics.rewrite([])
    quiet = FLAGS.quiet or not writer
    bar = cli.progress(algo, program.num_iterations, f"sweep {FLAGS.algo} {FLAGS.env}", quiet)
    done = [0]  # iterations completed (restored or run): the console lines and Ctrl-C message

    def on_resume(per_run_records):
        if writer and not has_config:  # config.json was lost; the checkpoint's meta matched
            runs.write_run_info(out, sweep_info)
        for log, records in zip(logs, per_run_records if writer else [], strict=True):
            log.resume_from(records)
        done[0] = len(per_run_records[0])
        bar.update(done[0])
        if not quiet:
            bar.write(f"resumed from {algo.iteration_unit} {done[0]} in {out}")

    def progress(per_run_records):
        for log, record in zip(logs, per_run_records if writer else [], strict=True):
            log.write(record)
        done[0] += 1
        bar.update(1)
        if not quiet:
            bar.write(_progress_line(algo, done[0], per_run_records, layout))

    values = None
    if sweep_grid is not None:
        per_seed = len(layout.seeds) // len(sweep_grid.cells)
        values = {path: [cell[path] for cell in sweep_grid.cells for _ in range(per_seed)]
                  for path in sweep_grid.paths}
    try:
        _, records, info = run_sweep(
            program, layout.seeds, values=values, progress_fn=progress,
            checkpoint_dir=os.path.join(out, runs.CHECKPOINT_DIR), resume=resume,
            meta=sweep_info, on_resume=on_resume,
            on_notice=lambda message: print(f"notice: {message}"),
        )
    except KeyboardInterrupt:
        raise cli.Interrupted(
            f"stopped after {done[0]} of {program.num_iterations} {algo.iteration_units}; {out} "
            "keeps them: rerun the same command with --resume to continue"
        ) from None
    finally:
        bar.close()
        for log in logs:
            log.close()
    return records, info


def _finish(out: str, layout: Layout, sweep_grid: Any, records: list[list[dict]],
            info: dict) -> None:
    """curve.png and summary.json (per cell for a grid), the grid's table and plot, and the
    one-line summary."""
    import numpy as np

    from mbjax import grid
    from mbjax.logging import plot_curve, plot_grid, write_json_atomic

    num_cells = len(layout.cell_dirs)
    returns = np.array([[r["episode_return"] for r in recs] for recs in records])
    returns = returns.reshape(num_cells, -1, returns.shape[-1])  # [cells, seeds, iterations]
    seeds = layout.seeds[:returns.shape[1]]
    steps = [r["env_steps"] for r in records[0]]
    for cell_dir, cell_returns in zip(layout.cell_dirs, returns, strict=True):
        name = "" if sweep_grid is None else f", {os.path.basename(cell_dir)}"
        plot_curve(os.path.join(cell_dir, "curve.png"), steps, cell_returns,
                   title=f"{FLAGS.algo} on {FLAGS.env}, {len(seeds)} seeds{name}")
        write_json_atomic(os.path.join(cell_dir, "summary.json"), {
            **info, "seeds": seeds, "env_steps": steps,
            "return_mean": cell_returns.mean(0), "return_min": cell_returns.min(0),
            "return_max": cell_returns.max(0),
        })
    if sweep_grid is None:
        print(f"done: {len(seeds)} seeds on {info['num_devices']} device(s), final return mean "
              f"{returns[0, :, -1].mean():.2f} -> {out}")
        return
    bests = np.array([recs[-1]["best_return"] for recs in records]).reshape(num_cells, -1)
    rows = grid.summary_rows(sweep_grid, returns[:, :, -1], bests)
    table = grid.format_table(rows)
    write_json_atomic(os.path.join(out, "grid_summary.json"), {
        **info, "grid": sweep_grid.to_dict(), "seeds": seeds, "cells": rows})
    with open(os.path.join(out, "grid_summary.txt"), "w") as f:
        f.write(table)
    plot_grid(os.path.join(out, "grid.png"), [os.path.basename(d) for d in layout.cell_dirs],
              returns[:, :, -1], title=f"{FLAGS.algo} on {FLAGS.env}: final return per grid point")
    print(table, end="")
    print(f"done: {num_cells} grid points x {len(seeds)} seeds on {info['num_devices']} "
          f"device(s) -> {out}")


def main() -> None:
    from mbjax import grid

    try:
        sys.argv, grid_flags = grid.split_grid_flags(sys.argv)
    except ValueError as e:
        cli.fail(str(e))
    GRID.update(grid_flags)
    cli.launch(run)


if __name__ == "__main__":
    main()
