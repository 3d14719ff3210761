"""A learner as a sequence of compiled iterations, and the three ways to run it.

An algorithm describes its run as a `Program`: `init(key) -> state` and segments of identical
iterations (`step(state) -> (state, metrics)` repeated `count` times; e.g. PETS: random seed
episodes, then learning episodes). From one Program:

- `make_pure_train(program)` -> `train(key) -> (state, metrics)`: one pure function, every segment
  a `lax.scan`; `jax.jit(jax.vmap(train))(keys)` is a seed sweep in one program.
- `run_host(program, ...)`: the same step functions one iteration at a time, with progress,
  checkpoints after every iteration and exact resume.
- `run_sweep(program, seeds, ...)`: the steps vmapped over seeds, the seed axis sharded over all
  local devices, one compiled call per iteration.

All three execute the same functions, so a resumed run equals an uninterrupted one and a vmapped
seed equals its single run.
"""

from __future__ import annotations

import time
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mbjax.checkpoint import Checkpointer


class Segment(NamedTuple):
    step: Callable[[Any], tuple[Any, Any]]
    count: int


class Program(NamedTuple):
    """init(key) -> state; segments run in order; to_record(iteration, metrics) -> dict (host).

    Metrics are a NamedTuple/dict of scalars and must include `env_steps`, `episode_return` and
    `nonfinite` (bool: NaN/Inf met in training, reported as FloatingPointError by the runners).
    """

    init: Callable[[jax.Array], Any]
    segments: tuple[Segment, ...]
    to_record: Callable[[int, Any], dict[str, Any]]

    @property
    def num_iterations(self) -> int:
        return sum(s.count for s in self.segments)

    def step_at(self, iteration: int) -> Callable[[Any], tuple[Any, Any]]:
        for segment in self.segments:
            if iteration < segment.count:
                return segment.step
            iteration -= segment.count
        raise IndexError(iteration)


def make_pure_train(program: Program) -> Callable[[jax.Array], tuple[Any, Any]]:
    """`train(key) -> (final_state, metrics)`, metrics leaves stacked to [num_iterations]."""

    def train(key: jax.Array):
        state = program.init(key)
        parts = []
        for segment in program.segments:  # a handful of static segments, each a lax.scan
            if segment.count == 0:
                continue
            state, metrics = jax.lax.scan(
                lambda s, _, step=segment.step: step(s), state, None, length=segment.count
            )
            parts.append(metrics)
        metrics = jax.tree_util.tree_map(lambda *xs: jnp.concatenate(xs), *parts)
        return state, metrics

    return train


def _check_finite(iteration: int, metrics: Any, seed: Any = None) -> None:
    bad = np.asarray(metrics["nonfinite"] if isinstance(metrics, dict) else metrics.nonfinite)
    if bad.any():
        where = f" (seed {seed})" if seed is not None else ""
        raise FloatingPointError(
            f"training produced NaN/Inf in iteration {iteration}{where}: lower the learning "
            "rates or check the environment's observations and rewards"
        )


def _finish_record(program: Program, i: int, metrics: Any, wall: float, best: float) -> dict:
    record = program.to_record(i, metrics)
    record["best_return"] = max(best, record["episode_return"])
    record["wall_time_s"] = wall
    return record


def run_host(
    program: Program,
    seed: int,
    *,
    progress_fn: Callable[[dict[str, Any]], None] | None = None,
    checkpoint_dir: str | None = None,
    resume: bool = False,
    on_resume: Callable[[list[dict[str, Any]]], None] | None = None,
) -> tuple[Any, list[dict[str, Any]]]:
    """Runs `program` iteration by iteration; see the module docstring. Returns (state, records)."""
    compiled: dict[int, Callable] = {}
    state = program.init(jax.random.PRNGKey(seed))
    records: list[dict[str, Any]] = []
    checkpointer = Checkpointer(checkpoint_dir) if checkpoint_dir else None
    if resume and checkpointer is not None and checkpointer.latest_step() is not None:
        state, meta = checkpointer.restore(state)
        records = list(meta["records"])
        if on_resume is not None:
            on_resume(records)
    wall0 = time.perf_counter() - (records[-1]["wall_time_s"] if records else 0.0)
    best = max((r["episode_return"] for r in records), default=-np.inf)
    for i in range(len(records), program.num_iterations):
        step = program.step_at(i)
        if id(step) not in compiled:
            compiled[id(step)] = jax.jit(step)
        state, metrics = compiled[id(step)](state)
        metrics = jax.device_get(metrics)
        _check_finite(i, metrics)
        record = _finish_record(program, i, metrics, time.perf_counter() - wall0, best)
        best = record["best_return"]
        records.append(record)
        if checkpointer is not None:
            checkpointer.save(i + 1, state, {"records": records})
        if progress_fn is not None:
            progress_fn(record)
    if checkpointer is not None:
        checkpointer.close()
    return state, records


def seed_sharding(num_seeds: int):
    """A NamedSharding that splits a leading seed axis over all local devices."""
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    devices = np.array(jax.local_devices())
    if num_seeds % len(devices):
        raise ValueError(
            f"{num_seeds} seeds cannot be split evenly over {len(devices)} devices; "
            "use a multiple of the device count"
        )
    mesh = Mesh(devices, ("seeds",))
    return NamedSharding(mesh, PartitionSpec("seeds"))


def run_sweep(
    program: Program,
    seeds: list[int],
    *,
    progress_fn: Callable[[list[dict[str, Any]]], None] | None = None,
) -> tuple[Any, list[list[dict[str, Any]]], dict[str, Any]]:
    """Runs all `seeds` as one vmapped program per iteration, the seed axis sharded over devices.

    Seeds are padded up to a multiple of the device count (the padding runs are dropped).
    Returns (states [S, ...], records per seed, info).
    """
    n_dev = jax.local_device_count()
    padded = list(seeds) + [max(seeds) + 1 + i for i in range(-len(seeds) % n_dev)]
    sharding = seed_sharding(len(padded))
    keys = jax.device_put(jnp.stack([jax.random.PRNGKey(s) for s in padded]), sharding)
    state = jax.jit(jax.vmap(program.init))(keys)
    compiled: dict[int, Callable] = {}
    records: list[list[dict[str, Any]]] = [[] for _ in seeds]
    best = [-np.inf] * len(seeds)
    wall0 = time.perf_counter()
    for i in range(program.num_iterations):
        step = program.step_at(i)
        if id(step) not in compiled:
            compiled[id(step)] = jax.jit(jax.vmap(step))
        state, metrics = compiled[id(step)](state)
        metrics = jax.device_get(metrics)
        wall = time.perf_counter() - wall0
        for j, s in enumerate(seeds):
            seed_metrics = jax.tree_util.tree_map(lambda x, j=j: x[j], metrics)
            _check_finite(i, seed_metrics, s)
            record = _finish_record(program, i, seed_metrics, wall, best[j])
            best[j] = record["best_return"]
            records[j].append(record)
        if progress_fn is not None:
            progress_fn([r[-1] for r in records])
    info = {"num_devices": n_dev, "num_seeds_run": len(padded),
            "devices": [str(d) for d in jax.local_devices()]}
    return state, records, info
