"""The command-line entry points as a user runs them: end to end, kill + resume, bad flags."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(*args, env_extra=None, timeout=600):
    env = dict(os.environ, PYTHONUNBUFFERED="1", **(env_extra or {}))
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=timeout,
    )


def _returns(path):
    with open(path) as f:
        return [json.loads(line)["episode_return"] for line in f if line.strip()]


TRAIN = ["experiments.train", "--algo=pets", "--env=point_mass", "--preset=test", "--seed=2",
         "--config.num_episodes=3"]


def test_train_cli_writes_metrics_config_curve_and_checkpoints(tmp_path):
    out = tmp_path / "run"
    proc = _run(*TRAIN, f"--output_dir={out}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "episode=2" in proc.stderr + proc.stdout
    with open(out / "metrics.jsonl") as f:
        records = [json.loads(line) for line in f]
    assert [r["episode"] for r in records] == [0, 1, 2]
    for key in ("episode", "env_steps", "episode_return", "wall_time_s"):
        assert all(key in r for r in records)
    config = json.loads((out / "config.json").read_text())
    assert config["config"]["num_episodes"] == 3 and config["env"] == "point_mass"
    assert (out / "curve.png").read_bytes()[:4] == b"\x89PNG"
    assert sorted(os.listdir(out / "checkpoints"))[-1] == "3"
    assert any(".tfevents." in name for name in os.listdir(out))  # TensorBoard beside metrics
    # A second run into the same directory without --resume is refused, not overwritten.
    again = _run(*TRAIN, f"--output_dir={out}")
    assert again.returncode == 2 and "--resume" in again.stderr


def test_killed_run_resumes_to_the_uninterrupted_metrics(tmp_path):
    full, killed = tmp_path / "full", tmp_path / "killed"
    assert _run(*TRAIN, f"--output_dir={full}").returncode == 0
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", *TRAIN, f"--output_dir={killed}"], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    metrics = killed / "metrics.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and (not metrics.exists() or len(_returns(metrics)) < 2):
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)  # no chance to clean up
    proc.wait()
    assert 1 <= len(_returns(metrics)) < 3
    resumed = _run(*TRAIN, f"--output_dir={killed}", "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resumed from episode" in resumed.stdout + resumed.stderr
    assert _returns(metrics) == _returns(full / "metrics.jsonl")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--algo=ppo"], "unknown algorithm 'ppo'"),
        (["--env=cartpole_swingpu"], "cartpole_swingup"),
        (["--config.num_episodes=0"], "num_episodes=0"),
        (["--config.model.hidden_size=3"], "did you mean hidden_sizes"),
        (["--config.model.learning_rate=fast"], "expected float"),
        (["--preset=huge"], "unknown PETS preset"),
        (["--seed=-1"], "--seed=-1"),
        # The planner selector switches planner_config to iCEM's fields before they are set.
        (["--config.planner_config.noise_beta=loud", "--config.planner=icem"], "expected float"),
        (["--config.planner=cmaes"], "planner='cmaes' is invalid"),
        (["--algo=mbpo", "--preset=huge"], "unknown MBPO preset"),
        (["--algo=mbpo", "--config.real_ratio=2"], "real_ratio=2.0 is invalid"),
        (["--algo=sac", "--preset=huge"], "unknown SAC preset"),
        (["--algo=sac", "--config.num_epochs=0"], "num_epochs=0 is invalid"),
        (["--algo=sac", "--config.sac.hidden_size=3"], "did you mean hidden_sizes"),
    ],
)
def test_bad_flags_exit_with_a_clear_message(tmp_path, args, message):
    proc = _run("experiments.train", "--env=point_mass", f"--output_dir={tmp_path}", *args,
                timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]  # one line, the last thing printed
    assert last.startswith("error: ") and message in last, proc.stderr[-2000:]


GRID_SWEEP = ["experiments.sweep", "--algo=pets", "--env=point_mass", "--preset=test",
              "--seeds=2", "--seed_start=1", "--config.num_episodes=2",
              "--grid.planner_config.alpha=0.05,0.3"]


@pytest.fixture(scope="module")
def grid_sweep(tmp_path_factory):
    """A 2-point x 2-seed grid sweep of one process over 4 CPU devices."""
    out = tmp_path_factory.mktemp("grid") / "one_process"
    proc = _run(*GRID_SWEEP, f"--output_dir={out}",
                env_extra={"XLA_FLAGS": "--xla_force_host_platform_device_count=4"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


def _all_metrics(root):
    """{run dir relative to root: records without wall times} of every metrics.jsonl."""
    runs = {}
    for path in root.rglob("metrics.jsonl"):
        records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        runs[str(path.parent.relative_to(root))] = [
            {k: v for k, v in r.items() if k != "wall_time_s"} for r in records]
    return runs


def test_two_process_sweep_writes_the_cells_of_the_one_process_sweep(grid_sweep, tmp_path):
    # jax.distributed on localhost: 2 processes x 2 CPU devices = the same 4-device mesh.
    import socket

    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    out = tmp_path / "two_processes"
    env = dict(os.environ, PYTHONUNBUFFERED="1",
               XLA_FLAGS="--xla_force_host_platform_device_count=2")
    procs = [subprocess.Popen(
        [sys.executable, "-m", *GRID_SWEEP, f"--output_dir={out}", "--quiet",
         f"--coordinator_address=localhost:{port}", "--num_processes=2", f"--process_id={i}"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(2)]
    try:
        results = [p.communicate(timeout=600) for p in procs]
    finally:
        for p in procs:
            p.kill()
    for p, (_, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err[-2000:]
    assert "4 device(s)" in results[0][0] and "done:" not in results[1][0]  # process 0 reports
    assert _all_metrics(out) == _all_metrics(grid_sweep)  # every cell, written once, equal
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in grid_sweep.iterdir())
    summary = json.loads((out / "grid_summary.json").read_text())
    assert summary["num_processes"] == 2 and summary["num_devices"] == 4


def test_grid_sweep_writes_cells_table_and_plot(grid_sweep):
    out = grid_sweep
    cells = sorted(p.name for p in out.iterdir() if p.name.startswith("cell_"))
    assert cells == ["cell_000__planner_config.alpha=0.05", "cell_001__planner_config.alpha=0.3"]
    summary = json.loads((out / "grid_summary.json").read_text())
    assert summary["num_devices"] == 4 and summary["grid"] == {"planner_config.alpha": [0.05, 0.3]}
    for cell, row in zip(cells, summary["cells"], strict=True):
        cell_info = json.loads((out / cell / "config.json").read_text())
        assert cell_info["config"]["planner_config"]["alpha"] == row["planner_config.alpha"]
        finals = [_returns(out / cell / f"seed_{s}" / "metrics.jsonl")[-1] for s in (1, 2)]
        assert row["final_return_mean"] == pytest.approx(np.mean(finals))
        assert row["final_return_min"] == pytest.approx(min(finals))
        assert (out / cell / "curve.png").read_bytes()[:4] == b"\x89PNG"
    table = (out / "grid_summary.txt").read_text().splitlines()
    assert "planner_config.alpha" in table[0] and len(table) == 3
    assert (out / "grid.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((out / "config.json").read_text())["grid"] == summary["grid"]


def test_sweep_shards_seeds_over_four_devices(tmp_path):
    out = tmp_path / "sweep"
    proc = _run(
        "experiments.sweep", "--algo=pets", "--env=point_mass", "--preset=test", "--seeds=4",
        "--config.num_episodes=2", f"--output_dir={out}",
        env_extra={"XLA_FLAGS": "--xla_force_host_platform_device_count=4"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["num_devices"] == 4 and summary["seeds"] == [0, 1, 2, 3]
    finals = [_returns(out / f"seed_{s}" / "metrics.jsonl") for s in range(4)]
    assert all(len(r) == 2 for r in finals)
    assert len({r[-1] for r in finals}) == 4  # different seeds, different runs
    assert (out / "curve.png").read_bytes()[:4] == b"\x89PNG"
    # Seed 2 of the sharded sweep equals its single run.
    single = tmp_path / "single"
    proc = _run("experiments.train", "--algo=pets", "--env=point_mass", "--preset=test",
                "--seed=2", "--config.num_episodes=2", f"--output_dir={single}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert _returns(single / "metrics.jsonl") == pytest.approx(finals[2], rel=1e-3, abs=1e-3)
