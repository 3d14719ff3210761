"""Planner throughput of two revisions, measured alternately in one run on this machine.

    python -m benchmarks.compare_revisions --base=<git rev> --repeats=2 \
        --args="--quick" --out=benchmarks/results/planner_throughput_vs_<rev>.json

Runs `benchmarks/planner_throughput.py` of the working tree and of `--base` (checked out into a
temporary git worktree, each imported from its own tree) alternately, `--repeats` times each, so
both see the same machine and load. Writes every row's plans/s per revision (median over repeats,
with min and max) and the ratio new / base, keyed by (size, planner, mode, batch).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile

import numpy as np
from absl import app, flags

from benchmarks.common import device_info, write_json

FLAGS = flags.FLAGS
flags.DEFINE_string("base", None, "The git revision to compare against (required).")
flags.DEFINE_integer("repeats", 2, "Runs per revision (alternating).")
flags.DEFINE_string("args", "--quick", "Arguments for planner_throughput (both revisions).")
flags.DEFINE_string("out", "benchmarks/results/planner_throughput_vs_base.json", "JSON output.")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(tree: str, out: str) -> dict:
    """One planner_throughput run with `tree`'s code (cwd first on sys.path via -m)."""
    cmd = [sys.executable, "-m", "benchmarks.planner_throughput", f"--out={out}", "--nopng",
           *shlex.split(FLAGS.args)]
    env = dict(os.environ, PYTHONPATH=tree)
    proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"planner_throughput failed in {tree}:\n{proc.stderr[-3000:]}")
    with open(out) as f:
        return json.load(f)


def _key(row: dict) -> str:
    return f"{row['size']}/{row['planner']}/{row['mode']}/B={row['batch']}"


def _summary(runs: list[dict]) -> dict[str, list[float]]:
    per_row: dict[str, list[float]] = {}
    for run in runs:
        for row in run["rows"]:
            per_row.setdefault(_key(row), []).append(row["plans_per_s"])
    return per_row


def main(argv: list[str]) -> None:
    del argv
    if not FLAGS.base:
        raise app.UsageError("--base is required")
    with tempfile.TemporaryDirectory() as tmp:
        base_tree = os.path.join(tmp, "base")
        subprocess.run(["git", "worktree", "add", "--detach", base_tree, FLAGS.base], cwd=ROOT,
                       check=True, capture_output=True)
        try:
            runs: dict[str, list[dict]] = {"base": [], "new": []}
            for i in range(FLAGS.repeats):
                for name, tree in (("base", base_tree), ("new", ROOT)):
                    runs[name].append(_run(tree, os.path.join(tmp, f"{name}_{i}.json")))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", base_tree], cwd=ROOT,
                           capture_output=True)
    base, new = _summary(runs["base"]), _summary(runs["new"])
    rows = []
    for key in sorted(set(base) & set(new)):
        b, n = np.median(base[key]), np.median(new[key])
        rows.append({"row": key, "base_plans_per_s": float(b), "new_plans_per_s": float(n),
                     "base_min_max": [min(base[key]), max(base[key])],
                     "new_min_max": [min(new[key]), max(new[key])],
                     "ratio_new_over_base": float(n / b)})
    ratios = [r["ratio_new_over_base"] for r in rows]
    write_json(FLAGS.out, {
        "benchmark": "planner_throughput, two revisions alternately in one run",
        "device": device_info(), "base": FLAGS.base, "args": FLAGS.args,
        "repeats": FLAGS.repeats,
        "matmul_peak_flops": {name: [r["matmul_peak_flops"] for r in rs]
                              for name, rs in runs.items()},
        "rows": rows,
        "ratio_median": float(np.median(ratios)), "ratio_min": float(min(ratios)),
        "ratio_max": float(max(ratios)),
    })
    for r in rows:
        print(f"{r['row']:45s} base {r['base_plans_per_s']:9.2f}  new {r['new_plans_per_s']:9.2f}"
              f"  ratio {r['ratio_new_over_base']:.3f}")
    print(f"median ratio {np.median(ratios):.3f} (min {min(ratios):.3f}, max {max(ratios):.3f})")


if __name__ == "__main__":
    app.run(main)
