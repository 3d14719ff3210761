"""Metrics sinks (JSONL), progress bars and learning-curve plots.

Host-side only: nothing here runs inside jit.
"""

from __future__ import annotations

import json
import math
import os
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
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(to_python(payload), f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


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


def format_episode_line(record: dict[str, Any]) -> str:
    """One concise line per episode for the console."""
    parts = []
    keys = ("episode", "env_steps", "episode_return", "best_return", "model_loss", "wall_time_s")
    for key in keys:
        if key in record:
            v = record[key]
            if isinstance(v, float) and not math.isnan(v):
                v = f"{v:.3f}" if abs(v) < 1000 else f"{v:.1f}"
            parts.append(f"{key}={v}")
    return "  ".join(parts)
