"""Many runs of one Program as one vmapped program per iteration, sharded over all devices.

A sweep's runs are seeds, or (grid point x seed) pairs of a hyperparameter grid (`mbjax.grid`:
each run's numeric leaves set after `init`, so all runs share one compiled step). The run axis
is sharded over every device of every process (`jax.devices()`): with one process, all local
devices; after `jax.distributed.initialize`, the global mesh of all hosts (JAX's own
multi-controller runtime: every process runs this same code on its own shard of the runs).

Host side: each iteration's metrics (and, for checkpoints, the state) are gathered to every
process; only process 0 writes (checkpoints here, metrics files in the caller's progress_fn),
so each run's files are written once. Checkpoints hold the real runs' rows as host arrays, so a
sweep resumes on any number of devices or processes. A resume reads the checkpoint on every
process (a filesystem all processes see, e.g. local disk for processes on one host or a shared
mount / bucket on a cluster).
"""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import jax
import numpy as np

from mbjax.agents.program import (
    Program,
    Record,
    best_return,
    finish_record,
    guard_step,
    jsonable,
    open_checkpoints,
    records_checker,
)
from mbjax.checkpoint import Notice

RUN_AXIS = "runs"


def is_writer() -> bool:
    """Whether this process writes the sweep's files (process 0; always true in one process)."""
    return jax.process_index() == 0


def run_sharding(num_runs: int):
    """A NamedSharding that splits a leading run axis over all devices of all processes."""
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    devices = np.array(jax.devices())
    if num_runs % len(devices):
        raise ValueError(
            f"{num_runs} runs cannot be split evenly over {len(devices)} devices; "
            "use a multiple of the device count"
        )
    return NamedSharding(Mesh(devices, (RUN_AXIS,)), PartitionSpec(RUN_AXIS))


def to_host(tree: Any) -> Any:
    """A (run-sharded) pytree as numpy arrays holding every run, on every process."""
    if jax.process_count() == 1:
        return jax.tree_util.tree_map(np.asarray, jax.device_get(tree))
    from jax.experimental import multihost_utils

    return multihost_utils.process_allgather(tree, tiled=True)


def to_devices(host: Any, sharding: Any) -> Any:
    """Host arrays (identical on every process) as arrays sharded by `sharding`: each process
    places only the rows of its own devices."""
    return jax.tree_util.tree_map(
        lambda x: jax.make_array_from_callback(x.shape, sharding, lambda index: x[index]),
        host,
    )


def _first(tree: Any, n: int) -> Any:
    """The first n rows of every leaf: the real runs of a padded sweep state, on the host."""
    return jax.tree_util.tree_map(lambda x: x[:n], to_host(tree))


def _padded(seeds: Sequence[int], values: dict[str, Sequence[float]] | None,
            num_devices: int) -> tuple[np.ndarray, dict[str, np.ndarray] | None]:
    """Keys [R'] and grid values {path: [R']} with R' the run count rounded up to a multiple
    of the device count; padding runs (new seeds, the first run's values) are dropped later."""
    pad = -len(seeds) % num_devices
    keys = np.stack([np.asarray(jax.random.PRNGKey(s))
                     for s in list(seeds) + [max(seeds) + 1 + i for i in range(pad)]])
    if values is None:
        return keys, None
    return keys, {path: np.asarray(list(v) + [v[0]] * pad, np.float32)
                  for path, v in values.items()}


def _initial_state(program: Program, keys: np.ndarray, values: dict | None, sharding: Any):
    """Every run's `program.init`, computed sharded (each device builds its own runs)."""
    inputs = (keys,) if values is None else (keys, values)
    init = jax.jit(jax.vmap(program.init), out_shardings=sharding)
    with program.precision():
        return init(*to_devices(inputs, sharding))


def _sweep_start(program: Program, seeds: Sequence[int], values: dict | None,
                 checkpoint_dir: str | None, resume: bool, meta: dict[str, Any] | None,
                 on_notice: Notice | None):
    """(checkpointer or None, padded sharded state, per-run records, run description) of a
    sweep, fresh or restored. Only process 0 keeps the checkpointer open to save."""
    keys, padded_values = _padded(seeds, values, jax.device_count())
    sharding = run_sharding(len(keys))
    state = _initial_state(program, keys, padded_values, sharding)
    run = jsonable({"seeds": list(seeds), **(meta or {})})
    checkpointer, restored, saved = open_checkpoints(
        checkpoint_dir, resume, _first(state, len(seeds)), run,
        records_checker(program.num_iterations, len(seeds), checkpoint_dir), on_notice,
        writer=is_writer(),
    )
    records: list[list[Record]] = [[] for _ in seeds]
    if restored is not None:
        # The restored real runs, then the padding runs of the fresh state (any valid state
        # serves: they are dropped), so checkpoints do not depend on the device count.
        padding = jax.tree_util.tree_map(lambda x: x[len(seeds):], to_host(state))
        joined = jax.tree_util.tree_map(lambda r, p: np.concatenate([np.asarray(r), p]),
                                        restored, padding)
        state, records = to_devices(joined, sharding), [list(r) for r in saved["records"]]
    return checkpointer, state, records, run


def run_sweep(
    program: Program,
    seeds: Sequence[int],
    *,
    values: dict[str, Sequence[float]] | None = None,
    progress_fn: Callable[[list[Record]], None] | None = None,
    checkpoint_dir: str | None = None,
    resume: bool = False,
    meta: dict[str, Any] | None = None,
    on_resume: Callable[[list[list[Record]]], None] | None = None,
    on_notice: Notice | None = None,
) -> tuple[Any, list[list[Record]], dict[str, Any]]:
    """Runs one run per entry of `seeds` (PRNGKey(seed)) as one vmapped program per iteration.

    values: a grid's per-run leaves {config path: [R] floats}, passed as
    `program.init(key, values)` (a `mbjax.grid.grid_program`); None: `program.init(key)`.
    Runs are padded up to a multiple of the device count (the padding runs are dropped).
    progress_fn(last record of each run) is called after each iteration, on every process.
    With `checkpoint_dir`, process 0 saves the real runs' states, their records and the run
    description (`seeds` plus `meta`) after every iteration; `resume` continues exactly, as in
    `run_host` (on_resume(records per run) first). Returns (states [R, ...] as host arrays,
    records per run, info).
    """
    checkpointer, state, records, run = _sweep_start(
        program, seeds, values, checkpoint_dir, resume, meta, on_notice
    )
    if on_resume is not None and records[0]:
        on_resume(records)
    compiled: dict[int, Callable] = {}
    best = [best_return(r) for r in records]
    wall0 = time.perf_counter() - (records[0][-1]["wall_time_s"] if records[0] else 0.0)
    try:
        for i in range(len(records[0]), program.num_iterations):
            step = program.step_at(i)
            if id(step) not in compiled:
                compiled[id(step)] = jax.jit(jax.vmap(guard_step(step, program.on_nonfinite)))
            with program.precision():
                state, metrics = compiled[id(step)](state)
            metrics, wall = to_host(metrics), time.perf_counter() - wall0
            for j, s in enumerate(seeds):
                run_metrics = jax.tree_util.tree_map(lambda x, j=j: x[j], metrics)
                records[j].append(finish_record(program, i, run_metrics, wall, best[j], s))
                best[j] = records[j][-1]["best_return"]
            if checkpoint_dir is not None:
                host_state = _first(state, len(seeds))  # every process takes part in the gather
                if checkpointer is not None:
                    checkpointer.save(i + 1, host_state, {"records": records, "run": run})
            if progress_fn is not None:
                progress_fn([r[-1] for r in records])
    finally:
        if checkpointer is not None:
            checkpointer.close()
    num_devices = jax.device_count()
    info = {"num_devices": num_devices, "num_processes": jax.process_count(),
            "num_runs": len(seeds), "num_runs_padded": len(seeds) + (-len(seeds) % num_devices),
            "devices": [str(d) for d in jax.devices()]}
    return _first(state, len(seeds)), records, info


__all__ = ["is_writer", "run_sharding", "run_sweep", "to_devices", "to_host"]
