"""Sweeps checkpoint the vmapped state after every iteration and resume exactly."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from toy_program import toy_program, without_wall_time

from mbjax.agents.sweep import run_sweep
from mbjax.checkpoint import CheckpointError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SWEEP = ["experiments.sweep", "--algo=pets", "--env=point_mass", "--preset=test", "--seeds=2",
         "--config.num_episodes=3", "--quiet"]


def test_run_sweep_resumes_to_the_uninterrupted_records(tmp_path):
    program = toy_program(6, nan_below=0.3, on_nonfinite="rollback")
    full_states, full, _ = run_sweep(program, [3, 4, 5])
    ck = str(tmp_path / "ck")
    run_sweep(toy_program(4, nan_below=0.3, on_nonfinite="rollback"), [3, 4, 5],
              checkpoint_dir=ck, meta={"algo": "toy"})  # stopped after 4 of 6 iterations
    restored = []
    states, records, _ = run_sweep(program, [3, 4, 5], checkpoint_dir=ck, resume=True,
                                   meta={"algo": "toy"},
                                   on_resume=lambda r: restored.append([len(x) for x in r]))
    assert restored == [[4, 4, 4]]
    assert repr([without_wall_time(r) for r in records]) == repr(
        [without_wall_time(r) for r in full])
    np.testing.assert_array_equal(states["x"], full_states["x"])
    # Another set of seeds or settings is refused, naming the field.
    with pytest.raises(CheckpointError, match=r"seeds: \[3, 4, 5\] -> \[3, 4\]"):
        run_sweep(program, [3, 4], checkpoint_dir=ck, resume=True, meta={"algo": "toy"})
    with pytest.raises(CheckpointError, match="algo: 'toy' -> 'other'"):
        run_sweep(program, [3, 4, 5], checkpoint_dir=ck, resume=True, meta={"algo": "other"})
    with pytest.raises(CheckpointError, match="already holds checkpoints"):
        run_sweep(program, [3, 4, 5], checkpoint_dir=ck, meta={"algo": "toy"})


def _seed_returns(out, seeds=(0, 1)):
    returns = []
    for s in seeds:
        with open(os.path.join(out, f"seed_{s}", "metrics.jsonl")) as f:
            returns.append([json.loads(line)["episode_return"] for line in f if line.strip()])
    return returns


def test_killed_sweep_resumes_to_the_uninterrupted_metrics(tmp_path):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    full, killed = tmp_path / "full", tmp_path / "killed"
    done = subprocess.run([sys.executable, "-m", *SWEEP, f"--output_dir={full}"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    proc = subprocess.Popen([sys.executable, "-m", *SWEEP, f"--output_dir={killed}"], cwd=ROOT,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = killed / "seed_1" / "metrics.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and (not metrics.exists() or len(_seed_returns(killed)[1]) < 1):
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)  # no chance to clean up, maybe inside a checkpoint write
    proc.wait()
    assert 1 <= len(_seed_returns(killed)[1]) < 3
    resumed = subprocess.run([sys.executable, "-m", *SWEEP, f"--output_dir={killed}",
                              "--resume"], cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert _seed_returns(killed) == _seed_returns(full)
    summary = json.loads((killed / "summary.json").read_text())
    assert summary["seeds"] == [0, 1] and len(summary["return_mean"]) == 3
