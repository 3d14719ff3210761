"""A learner as a sequence of compiled iterations, and the three ways to run it.

An algorithm describes its run as a `Program`: `init(key) -> state` and segments of identical
iterations (`step(state) -> (state, metrics)` repeated `count` times; e.g. PETS: random seed
episodes, then learning episodes). From one Program:

- `make_pure_train(program)` -> `train(key) -> (state, metrics)`: one pure function, every segment
  a `lax.scan`; `jax.jit(jax.vmap(train))(keys)` is a seed sweep in one program.
- `run_host(program, ...)`: the same step functions one iteration at a time, with progress,
  checkpoints after every iteration and exact resume.
- `run_sweep(program, seeds, ...)` (`mbjax.agents.sweep`): the steps vmapped over runs (seeds,
  or grid points x seeds), the run axis sharded over all devices (of every process), one
  compiled call per iteration, checkpoints after every iteration and exact resume.

All three execute the same functions, so a resumed run equals an uninterrupted one and a vmapped
seed equals its single run.

Non-finite training (`Program.on_nonfinite`): with "raise" (the default) the host runners raise
FloatingPointError at the first iteration whose metrics report `nonfinite`. With "rollback" every
runner wraps each step so that such an iteration is undone inside the compiled step (`jnp.where`
over the state pytree, no host sync): the state returns to the one before the iteration except
its PRNG `key` field, which is advanced so the next try differs, and the run continues with that
iteration skipped. The host runners' records then carry `rolled_back` (true/false); with
`make_pure_train` the `nonfinite` metric marks the rolled-back iterations. So a learner state used
with "rollback" must have a `key` field (a dict key, NamedTuple or dataclass field).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import time
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mbjax import validation
from mbjax.checkpoint import Checkpointer, CheckpointError, Notice, check_run_meta

ON_NONFINITE = ("raise", "rollback")
Record = dict[str, Any]


class Segment(NamedTuple):
    step: Callable[[Any], tuple[Any, Any]]
    count: int


class _ProgramFields(NamedTuple):
    init: Callable[[jax.Array], Any]
    segments: tuple[Segment, ...]
    to_record: Callable[[int, Any], Record]
    on_nonfinite: str = "raise"
    x64: bool = False


class Program(_ProgramFields):
    """init(key) -> state; segments run in order; to_record(iteration, metrics) -> dict (host).

    Metrics are a NamedTuple/dict of scalars and must include `env_steps`, `episode_return` and
    `nonfinite` (bool: NaN/Inf met in training). on_nonfinite: "raise" (FloatingPointError from
    the host runners) or "rollback" (undo the iteration and continue; see the module docstring).
    x64: the runners trace, compile and run init and steps under `jax.enable_x64(True)` (a
    learner computing in float64, `mbjax.precision.float64_step`; its state stays float32).
    """

    __slots__ = ()

    def __new__(cls, init: Callable[[jax.Array], Any], segments: tuple[Segment, ...],
                to_record: Callable[[int, Any], Record], on_nonfinite: str = "raise",
                x64: bool = False):
        validation.check_choice("Program.on_nonfinite", on_nonfinite, ON_NONFINITE)
        return super().__new__(cls, init, tuple(segments), to_record, on_nonfinite, bool(x64))

    def precision(self) -> contextlib.AbstractContextManager:
        """The context the runners trace and run this program in (x64 or unchanged)."""
        return jax.enable_x64(True) if self.x64 else contextlib.nullcontext()

    @property
    def num_iterations(self) -> int:
        return sum(s.count for s in self.segments)

    def step_at(self, iteration: int) -> Callable[[Any], tuple[Any, Any]]:
        for segment in self.segments:
            if iteration < segment.count:
                return segment.step
            iteration -= segment.count
        raise IndexError(iteration)


# ------------------------------------------------------------------------ non-finite iterations


def _nonfinite(metrics: Any) -> Any:
    return metrics["nonfinite"] if isinstance(metrics, dict) else metrics.nonfinite


def _key_of(state: Any) -> jax.Array:
    key = state.get("key") if isinstance(state, dict) else getattr(state, "key", None)
    if key is None:
        raise ValueError(
            f"Program.on_nonfinite='rollback' needs a learner state with a `key` field (the PRNG "
            f"key advanced on a rollback); {type(state).__name__} has none"
        )
    return key


def _with_key(state: Any, key: jax.Array) -> Any:
    if isinstance(state, dict):
        return {**state, "key": key}
    if hasattr(state, "_replace"):  # NamedTuple
        return state._replace(key=key)
    return dataclasses.replace(state, key=key)  # dataclasses and flax.struct dataclasses


def guard_step(step: Callable[[Any], tuple[Any, Any]],
               on_nonfinite: str) -> Callable[[Any], tuple[Any, Any]]:
    """`step` as the runners execute it: unchanged for "raise"; for "rollback", an iteration
    whose metrics report `nonfinite` returns the state it started from with only its `key`
    advanced (selected with jnp.where inside the compiled step, so vmapped seeds roll back
    independently)."""
    if on_nonfinite == "raise":
        return step

    def step_or_rollback(state: Any) -> tuple[Any, Any]:
        new_state, metrics = step(state)
        bad = jnp.any(jnp.asarray(_nonfinite(metrics)))
        # fold_in: a key that differs from the step's own (and the old) key, so the retry does.
        retry = _with_key(state, jax.random.fold_in(_key_of(new_state), 1))
        new_state = jax.tree_util.tree_map(
            lambda old, new: jnp.where(bad, old, new), retry, new_state
        )
        return new_state, metrics

    return step_or_rollback


def make_pure_train(program: Program) -> Callable[[jax.Array], tuple[Any, Any]]:
    """`train(key) -> (final_state, metrics)`, metrics leaves stacked to [num_iterations].
    For a program with x64=True, jit and call it inside `program.precision()`."""

    def train(key: jax.Array):
        state = program.init(key)
        parts = []
        for segment in program.segments:  # a handful of static segments, each a lax.scan
            if segment.count == 0:
                continue
            step = guard_step(segment.step, program.on_nonfinite)
            state, metrics = jax.lax.scan(
                lambda s, _, step=step: step(s), state, None, length=segment.count
            )
            parts.append(metrics)
        metrics = jax.tree_util.tree_map(lambda *xs: jnp.concatenate(xs), *parts)
        return state, metrics

    return train


def _check_finite(iteration: int, metrics: Any, seed: Any = None) -> None:
    if np.asarray(_nonfinite(metrics)).any():
        where = f" (seed {seed})" if seed is not None else ""
        raise FloatingPointError(
            f"training produced NaN/Inf in iteration {iteration}{where}: lower the learning "
            "rates or check the environment's observations and rewards (or set "
            "on_nonfinite='rollback' to skip such iterations)"
        )


def best_return(records: list[Record]) -> float:
    """The best return of the iterations that counted (rolled-back ones did not)."""
    return max((r["episode_return"] for r in records if not r.get("rolled_back")),
               default=-np.inf)


def finish_record(program: Program, i: int, metrics: Any, wall: float, best: float,
                   seed: Any = None) -> Record:
    """The host record of iteration i (raising on NaN/Inf when the program says "raise")."""
    record = program.to_record(i, metrics)
    rolled_back = bool(np.asarray(_nonfinite(metrics)).any())
    if program.on_nonfinite == "raise":
        _check_finite(i, metrics, seed)
    else:
        record["rolled_back"] = rolled_back
    record["best_return"] = best if rolled_back else max(best, record["episode_return"])
    record["wall_time_s"] = wall
    return record


# ------------------------------------------------------------------------------- checkpoints


def open_checkpoints(
    checkpoint_dir: str | None, resume: bool, like: Any, run: dict[str, Any] | None,
    check_records: Callable[[int, Any], None], on_notice: Notice | None, writer: bool = True,
) -> tuple[Checkpointer | None, Any, dict[str, Any] | None]:
    """(checkpointer, restored state, restored meta) for a run starting or resuming.

    A fresh run refuses a directory that already holds checkpoints (its saves would be refused
    and a later resume would restore the other run); a resume needs a readable checkpoint whose
    run description matches `run` and whose records fit (`check_records(step, records)`).
    writer=False (a multi-process sweep's processes other than 0): no checkpointer is kept (they
    never save); a resume still restores (every process needs the state).
    """
    if checkpoint_dir is None:
        if resume:
            raise CheckpointError("no checkpoint to resume: resume=True needs a checkpoint_dir")
        return None, None, None
    if not writer and not resume:
        return None, None, None
    if resume and not os.path.isdir(checkpoint_dir):  # do not create it just to find it empty
        raise CheckpointError(f"no checkpoint to resume in {checkpoint_dir!r} (no such directory)")
    checkpointer = Checkpointer(checkpoint_dir)
    latest = checkpointer.latest_step()
    if not resume:
        if latest is not None:
            checkpointer.close()
            raise CheckpointError(
                f"{checkpointer.directory!r} already holds checkpoints (up to step {latest}) of "
                "another run; resume that run or choose another directory"
            )
        return checkpointer, None, None

    def check(step: int, meta: dict[str, Any]) -> None:
        check_run_meta(meta.get("run"), run, step, checkpointer.directory)
        check_records(step, meta.get("records"))

    try:
        _, state, meta = checkpointer.restore_newest_valid(like, check, on_notice)
    except CheckpointError:
        checkpointer.close()
        raise
    if not writer:
        checkpointer.close()
        checkpointer = None
    return checkpointer, state, meta


def records_checker(num_iterations: int, num_seeds: int | None, directory: str | None):
    """Checks restored records: one per saved step (per seed in a sweep), within the program."""

    def check(step: int, records: Any) -> None:
        lists = [records] if num_seeds is None else records
        ok = isinstance(lists, list) and (num_seeds is None or len(lists) == num_seeds)
        ok = ok and all(isinstance(r, list) and len(r) == step for r in lists)
        if not ok:
            raise CheckpointError(f"checkpoint step {step} in {directory!r} holds records that "
                                  "do not match its step; it was not written by this runner")
        if step > num_iterations:
            raise CheckpointError(
                f"checkpoint step {step} in {directory!r} is past the program's "
                f"{num_iterations} iterations; resume with the run's own settings"
            )

    return check


def jsonable(meta: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if meta is None else json.loads(json.dumps(meta))


def run_host(
    program: Program,
    seed: int,
    *,
    progress_fn: Callable[[Record], None] | None = None,
    checkpoint_dir: str | None = None,
    resume: bool = False,
    on_resume: Callable[[list[Record]], None] | None = None,
    meta: dict[str, Any] | None = None,
    on_notice: Notice | None = None,
) -> tuple[Any, list[Record]]:
    """Runs `program` iteration by iteration; see the module docstring. Returns (state, records).

    With `checkpoint_dir`, the state, the records and `meta` (a JSON-able run description, e.g.
    {"algo", "env", "seed", "config"}) are saved after every iteration. A fresh run refuses a
    directory holding checkpoints; `resume=True` continues from the newest readable checkpoint
    (an unreadable newer one is skipped with a notice to `on_notice`, default a logging
    warning), refuses one whose saved meta differs from `meta` (naming the fields) and raises
    CheckpointError "no checkpoint to resume" when there is none. on_resume(records) is called
    with the restored records first.
    """
    with program.precision():
        state = program.init(jax.random.PRNGKey(seed))
    run = jsonable(meta)
    checkpointer, restored, saved = open_checkpoints(
        checkpoint_dir, resume, state, run,
        records_checker(program.num_iterations, None, checkpoint_dir), on_notice,
    )
    records: list[Record] = []
    if restored is not None:
        state, records = restored, list(saved["records"])
        if on_resume is not None:
            on_resume(records)
    compiled: dict[int, Callable] = {}
    wall0 = time.perf_counter() - (records[-1]["wall_time_s"] if records else 0.0)
    best = best_return(records)
    try:
        for i in range(len(records), program.num_iterations):
            step = program.step_at(i)
            if id(step) not in compiled:
                compiled[id(step)] = jax.jit(guard_step(step, program.on_nonfinite))
            with program.precision():
                state, metrics = compiled[id(step)](state)
            metrics = jax.device_get(metrics)
            record = finish_record(program, i, metrics, time.perf_counter() - wall0, best)
            best = record["best_return"]
            records.append(record)
            if checkpointer is not None:
                checkpointer.save(i + 1, state, {"records": records, "run": run})
            if progress_fn is not None:
                progress_fn(record)
    finally:
        if checkpointer is not None:
            checkpointer.close()
    return state, records
