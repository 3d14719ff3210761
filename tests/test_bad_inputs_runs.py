"""Bad inputs and faults around run directories, checkpoints and sweeps.

Each case either fails with exit code 2 (CLI) or CheckpointError/ValueError (API) and one line
naming the value, or ends in the correct result. Nothing a run wrote may be lost or mixed.
"""

import json
import os
import shutil

import cli_runner
import jax.numpy as jnp
import numpy as np
import pytest
from toy_program import toy_program, without_wall_time

from mbjax.agents.program import Program, run_host
from mbjax.agents.sweep import run_sweep
from mbjax.checkpoint import Checkpointer, CheckpointError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SWEEP = ["experiments.sweep", "--algo=pets", "--env=point_mass", "--preset=test", "--quiet",
         "--config.num_episodes=2"]


def _sweep(*args, timeout=600):
    """`python -m experiments.sweep ...` (forked from a pre-imported server: see cli_runner)."""
    return cli_runner.run(*SWEEP, *args, env=dict(os.environ, PYTHONUNBUFFERED="1"),
                          timeout=timeout)


def _assert_one_line_error(proc, message):
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and message in last, proc.stderr[-2000:]


def _write_config(path, **info):
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(info, f)


def _train_run_dir(path):
    _write_config(path, algo="pets", env="point_mass", seed=0, config={})
    (path / "metrics.jsonl").write_text('{"episode": 0}\n')


def _delete_a_data_file(step_dir):
    data = os.path.join(step_dir, "state", "d")
    os.remove(os.path.join(data, sorted(os.listdir(data))[0]))


# ------------------------------------------------------------------- sweep flags and directories


def _file(tmp):
    (tmp / "f").write_text("x")
    return tmp / "f"


@pytest.mark.parametrize("args, setup, message", [
    (["--seeds=0"], None, "--seeds=0 is invalid"),
    (["--seeds=-3"], None, "--seeds=-3 is invalid"),
    (["--seed_start=-1"], None, "--seed_start=-1 is invalid"),
    (["--seed_start=99999999999"], None, "--seed_start=99999999999 is invalid"),
    (["--seed_start=4294967295", "--seeds=2"], None, "--seeds=2 is invalid"),
    ([], lambda t: _file(t), "(it is a file)"),
    ([], lambda t: _file(t) / "sub", "is a file)"),
    ([], _train_run_dir, "a new or empty directory (it holds config.json, metrics.jsonl"),
    ([], lambda t: _write_config(t, algo="pets", env="point_mass", seeds=[6, 7], config={}),
     "a new or empty directory (it holds config.json"),
    ([], lambda t: (t / "notes.txt").write_text("mine") and None, "it holds notes.txt"),
    (["--resume"], _train_run_dir, "holds a run, not a sweep"),
    (["--resume", "--seeds=2"],
     lambda t: _write_config(t, algo="pets", env="point_mass", seeds=[0, 1, 2], config={}),
     "the flags differ from the run"),
    (["--resume"], None, "with --resume, a directory holding a run"),
])
def test_sweep_refuses_bad_flags_and_foreign_directories(tmp_path, args, setup, message):
    out = tmp_path / "out"
    if setup is not None:
        out.mkdir()
        target = setup(out)
        out = target if target is not None else out
    before = sorted(os.listdir(tmp_path))
    proc = _sweep(f"--output_dir={out}", *args)
    _assert_one_line_error(proc, message)
    assert sorted(os.listdir(tmp_path)) == before  # nothing written, nothing removed


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "done"
    proc = _sweep(f"--output_dir={out}", "--seeds=2")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


def _metrics(out):
    return [(out / f"seed_{s}" / "metrics.jsonl").read_text() for s in (0, 1)]


def _returns(out):
    return [[json.loads(line)["episode_return"] for line in text.splitlines()]
            for text in _metrics(out)]


def _corrupt_newest(out):
    _delete_a_data_file(out / "checkpoints" / "2")


def _damage_meta(out):
    (out / "checkpoints" / "2" / "meta" / "metadata").write_text("{not json")


@pytest.mark.parametrize("damage, expect", [
    (lambda out: None, "same"),  # resuming a finished sweep changes nothing
    (lambda out: os.remove(out / "config.json"), "same"),  # the checkpoint's meta is checked
    (_corrupt_newest, "notice"),
    (_damage_meta, "notice"),
    (lambda out: shutil.rmtree(out / "checkpoints"), "no checkpoint to resume"),
    (lambda out: [_delete_a_data_file(out / "checkpoints" / s) for s in ("1", "2")],
     "no checkpoint to resume"),
])
def test_sweep_resume_faults(finished_sweep, tmp_path, damage, expect):
    out = tmp_path / "copy"
    shutil.copytree(finished_sweep, out)
    damage(out)
    proc = _sweep(f"--output_dir={out}", "--seeds=2", "--resume")
    if expect in ("same", "notice"):
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert _returns(out) == _returns(finished_sweep)
        assert json.loads((out / "config.json").read_text())["seeds"] == [0, 1]
        if expect == "notice":
            assert "notice: checkpoint step 2" in proc.stdout and "from step 1" in proc.stdout
    else:
        _assert_one_line_error(proc, expect)
        assert _metrics(out) == _metrics(finished_sweep)  # the seeds' metrics are kept


@pytest.mark.parametrize("lose_config, args, message", [
    (True, ["--config.planner_config.population=40", "--config.planner_config.num_elites=4"],
     "config.planner_config.population: 64 -> 40"),  # only the checkpoint knows the settings
    (False, ["--seeds=3"], "seeds: [0, 1] -> [0, 1, 2]"),
    (True, ["--seed_start=1"], "seeds: [0, 1] -> [1, 2]"),
])
def test_sweep_resume_with_changed_settings_names_them(finished_sweep, tmp_path, lose_config,
                                                       args, message):
    out = tmp_path / "copy"
    shutil.copytree(finished_sweep, out)
    if lose_config:
        os.remove(out / "config.json")
    proc = _sweep(f"--output_dir={out}", "--seeds=2", "--resume", *args)
    _assert_one_line_error(proc, message)
    assert _metrics(out) == _metrics(finished_sweep)


# ------------------------------------------------------------------------- runners and the API


def _save_toy_run(tmp_path, iterations=3, meta=None):
    ck = str(tmp_path / "ck")
    run_host(toy_program(iterations), 0, checkpoint_dir=ck, meta=meta)
    return ck


def _resume(ck, program=None, **kw):
    return run_host(program or toy_program(5), 0, checkpoint_dir=ck, resume=True, **kw)


API_ERRORS = {
    "resume without a checkpoint_dir": (
        lambda t: run_host(toy_program(2), 0, resume=True), "no checkpoint to resume"),
    "resume from a missing directory": (
        lambda t: _resume(str(t / "missing")), "no checkpoint to resume"),
    "resume from an empty directory": (
        lambda t: (os.makedirs(t / "empty"), _resume(str(t / "empty"))),
        "no checkpoint to resume"),
    "a fresh run into another run's checkpoints": (
        lambda t: run_host(toy_program(2), 1, checkpoint_dir=_save_toy_run(t)),
        "already holds checkpoints (up to step 3)"),
    "resume with a different seed": (
        lambda t: _resume(_save_toy_run(t, meta={"seed": 0}), meta={"seed": 1}),
        "seed: 0 -> 1"),
    "resume with a nested setting changed": (
        lambda t: _resume(_save_toy_run(t, meta={"config": {"model": {"lr": 0.001}}}),
                          meta={"config": {"model": {"lr": 0.01}}}),
        "config.model.lr: 0.001 -> 0.01"),
    "resume with settings a checkpoint lacks": (
        lambda t: _resume(_save_toy_run(t), meta={"seed": 0}), "carries no run description"),
    "resume with other state shapes": (
        lambda t: _resume(_save_toy_run(t), toy_program(5, size=4)),
        "does not match the current config at ['x']"),
    "resume past the program's end": (
        lambda t: _resume(_save_toy_run(t), toy_program(2)), "past the program's 2 iterations"),
    "save at the newest step": (
        lambda t: Checkpointer(_save_toy_run(t)).save(3, {"a": jnp.ones(1)}, {}),
        "cannot save checkpoint step 3"),
    "every step unreadable": (
        lambda t: (_break_all(_save_toy_run(t)), _resume(str(t / "ck"))),
        "no checkpoint to resume"),
    "a sweep resumed with other seeds": (
        lambda t: (run_sweep(toy_program(2), [0, 1], checkpoint_dir=str(t / "s")),
                   run_sweep(toy_program(2), [0, 2], checkpoint_dir=str(t / "s"), resume=True)),
        "seeds: [0, 1] -> [0, 2]"),
    "an unknown on_nonfinite": (
        lambda t: Program(lambda k: {}, (), lambda i, m: {}, on_nonfinite="ignore"),
        "Program.on_nonfinite='ignore' is invalid"),
}


def _break_all(ck):
    for step in Checkpointer(ck).all_steps():
        _delete_a_data_file(os.path.join(ck, str(step)))


@pytest.mark.parametrize("case", sorted(API_ERRORS))
def test_runner_faults_raise_one_clear_error(tmp_path, case):
    action, message = API_ERRORS[case]
    with pytest.raises((CheckpointError, ValueError)) as info:
        action(tmp_path)
    assert message in str(info.value) and "\n" not in str(info.value)


def _truncate_data(step_dir):
    data = os.path.join(step_dir, "state", "d")
    path = os.path.join(data, sorted(os.listdir(data))[0])
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)


@pytest.mark.parametrize("damage", [
    _delete_a_data_file,
    _truncate_data,
    lambda step_dir: shutil.rmtree(os.path.join(step_dir, "state")),
    lambda step_dir: shutil.rmtree(os.path.join(step_dir, "meta")),
    lambda step_dir: open(os.path.join(step_dir, "meta", "metadata"), "w").close(),
])
def test_resume_falls_back_past_a_damaged_newest_step(tmp_path, damage):
    full_state, full = run_host(toy_program(5), 0)
    ck = _save_toy_run(tmp_path)
    damage(os.path.join(ck, "3"))
    notices = []
    state, records = _resume(ck, on_notice=notices.append)
    assert len(notices) == 1 and "step 3" in notices[0] and "from step 2" in notices[0]
    assert without_wall_time(records) == without_wall_time(full)
    np.testing.assert_array_equal(state["x"], full_state["x"])
