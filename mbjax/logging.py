"""Metrics sinks (JSONL, TensorBoard), progress bars and learning-curve plots.

Host-side only: nothing here runs inside jit.
"""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any, Iterable, Sequence

import numpy as np


def to_python(value: Any) -> Any:
    """Converts numpy/JAX scalars and arrays to JSON-serialisable Python values."""
    if isinstance(value, dict):
        return {k: to_python(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_python(v) for v in value]
    if hasattr(value, "tolist"):
        return np.asarray(value).tolist()
    return value


class MetricsWriter:
    """Appends one JSON object per line to `path`, flushed and fsynced per record.

    `rewrite(records)` replaces the file atomically (used on resume so the file holds exactly the
    records of the checkpoint it resumes from).
    """

    def __init__(self, path: str):
        self.path = path
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)

    def write(self, record: dict[str, Any]) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(to_python(record)) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def rewrite(self, records: Iterable[dict[str, Any]]) -> None:
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            for r in records:
                f.write(json.dumps(to_python(r)) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)


def read_jsonl(path: str) -> list[dict[str, Any]]:
    """Reads a metrics file, ignoring a torn last line left by a kill mid-write."""
    records = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                break
    return records


def write_json_atomic(path: str, payload: Any) -> None:
    """Writes JSON through a temporary file and a rename: a kill leaves the old file or the new
    one, never half of one."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(to_python(payload), f, indent=2)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def numeric_fields(record: dict[str, Any]) -> dict[str, float]:
    """The fields of a record that are numbers (not bools, None or strings), as floats."""
    return {
        k: float(v) for k, v in record.items()
        if isinstance(v, (int, float, np.number)) and not isinstance(v, (bool, np.bool_))
    }


class TensorBoardWriter:
    """TensorBoard event files in `logdir`: one scalar per numeric record field, x = `step_key`.

    Flushed after every record, so a killed run keeps its points. `resume_from(records)` (on
    resume) starts a new event file that tells TensorBoard to drop points at or after the last
    restored record's step (those a killed run may have written past its checkpoint) and writes
    that record again, so each step appears once and none is missing.
    """

    def __init__(self, logdir: str, step_key: str = "env_steps"):
        self.logdir = logdir
        self.step_key = step_key
        self._writer = None

    def _open(self, purge_step: int | None = None) -> Any:
        from tensorboardX import SummaryWriter  # lazy: only runs that log need it

        if self._writer is not None:
            self._writer.close()
        # tensorboardX names files by the second; a nanosecond suffix keeps a resumed run's file
        # from overwriting (and sorts it after) one opened in the same second.
        self._writer = SummaryWriter(self.logdir, purge_step=purge_step, flush_secs=3600,
                                     filename_suffix=f".{time.time_ns()}")
        return self._writer

    def write(self, record: dict[str, Any]) -> None:
        writer = self._writer or self._open()
        step = int(record[self.step_key])
        for key, value in numeric_fields(record).items():
            if key != self.step_key:
                writer.add_scalar(key, value, global_step=step)
        writer.flush()

    def resume_from(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        self._open(purge_step=int(records[-1][self.step_key]))
        self.write(records[-1])

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _tfrecords(path: str) -> Iterable[bytes]:
    """The payloads of a TFRecord file (length, crc, data, crc); stops at a torn last record."""
    import struct

    with open(path, "rb") as f:
        data = f.read()
    pos = 0
    while pos + 12 <= len(data):
        (length,) = struct.unpack("<Q", data[pos:pos + 8])
        if pos + 12 + length + 4 > len(data):
            return
        yield data[pos + 12:pos + 12 + length]
        pos += 12 + length + 4


def read_tensorboard_scalars(logdir: str) -> dict[str, list[tuple[int, float]]]:
    """{tag: [(step, value), ...]} from the event files in `logdir`, as TensorBoard shows them:
    files in name order, a purge marker (a resumed run's `SessionLog.START` at step s) dropping
    earlier points at steps >= s. Needs only tensorboardX's protobufs (no TensorBoard)."""
    from tensorboardX.proto import event_pb2

    scalars: dict[str, list[tuple[int, float]]] = {}
    for name in sorted(os.listdir(logdir)):
        if ".tfevents." not in name:
            continue
        for payload in _tfrecords(os.path.join(logdir, name)):
            event = event_pb2.Event.FromString(payload)
            start = event_pb2.SessionLog.START
            if event.HasField("session_log") and event.session_log.status == start:
                scalars = {t: [p for p in ps if p[0] < event.step] for t, ps in scalars.items()}
            for value in event.summary.value:
                scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    return scalars


class RunLog:
    """The per-iteration sinks of one run directory: `metrics.jsonl` and TensorBoard event files
    beside it (so `tensorboard --logdir runs/` shows every run and sweep seed)."""

    def __init__(self, directory: str):
        self.metrics = MetricsWriter(os.path.join(directory, "metrics.jsonl"))
        self.tensorboard = TensorBoardWriter(directory)

    def write(self, record: dict[str, Any]) -> None:
        self.metrics.write(record)
        self.tensorboard.write(record)

    def resume_from(self, records: list[dict[str, Any]]) -> None:
        """On resume: the files hold exactly the restored records, and go on from there."""
        self.metrics.rewrite(records)
        self.tensorboard.resume_from(records)

    def close(self) -> None:
        self.tensorboard.close()


def progress_bar(
    total: int, desc: str, initial: int = 0, disable: bool = False, unit: str = "it"
):
    """A tqdm bar (stderr) counting `unit`s (e.g. "episode"); `disable=True` for quiet runs."""
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit=unit, disable=disable, leave=True)


def plot_curve(
    path: str,
    x: Sequence[float],
    ys: np.ndarray | Sequence[Sequence[float]],
    *,
    xlabel: str = "environment steps",
    ylabel: str = "episode return",
    title: str = "",
    best_so_far: bool = False,
) -> None:
    """Writes a learning-curve PNG. `ys`: [runs, points]; several runs drawn as mean and min/max."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ys = np.atleast_2d(np.asarray(ys, dtype=float))
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    if ys.shape[0] == 1:
        ax.plot(x, ys[0], marker="o", ms=3, label="return")
        if best_so_far:
            ax.plot(x, np.maximum.accumulate(ys[0]), ls="--", label="best so far")
        ax.legend(loc="lower right")
    else:
        mean = ys.mean(axis=0)
        ax.plot(x, mean, label=f"mean of {ys.shape[0]} seeds")
        ax.fill_between(x, ys.min(axis=0), ys.max(axis=0), alpha=0.25, label="min/max")
        ax.legend(loc="lower right")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    tmp = path + ".tmp.png"
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)


def format_record_line(record: dict[str, Any], unit: str = "episode") -> str:
    """One concise console line per iteration, counted in `unit` ("episode", "epoch")."""
    parts = []
    keys = (unit, "env_steps", "episode_return", "best_return", "model_loss", "wall_time_s")
    for key in keys:
        if key in record:
            v = record[key]
            if isinstance(v, float) and not math.isnan(v):
                v = f"{v:.3f}" if abs(v) < 1000 else f"{v:.1f}"
            parts.append(f"{key}={v}")
    return "  ".join(parts)


def plot_grid(path: str, labels: Sequence[str], finals: np.ndarray, *, title: str = "",
              ylabel: str = "final return") -> None:
    """Writes a PNG of one value per grid point (finals: [points, seeds]) as the mean with a
    min/max bar over seeds, points in grid order along x (labelled by their settings)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    finals = np.atleast_2d(np.asarray(finals, dtype=float))
    mean, low, high = finals.mean(axis=1), finals.min(axis=1), finals.max(axis=1)
    x = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(labels) + 2), 4.5), dpi=100)
    ax.errorbar(x, mean, yerr=[mean - low, high - mean], fmt="o", capsize=4,
                label=f"mean and min/max of {finals.shape[1]} seeds")
    ax.set_xticks(x, labels, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel(ylabel)
    ax.legend(loc="best")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
