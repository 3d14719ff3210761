"""Run directories (`mbjax.runs`): guards, config.json round trips, TensorBoard, load_policy."""

import dataclasses
import json
import os
import types
import typing

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mbjax
from mbjax import acting, agents, configs, runs
from mbjax.agents import driver
from mbjax.checkpoint import CheckpointError
from mbjax.logging import RunLog, read_jsonl, read_tensorboard_scalars

ENV = "point_mass"
# Algorithms that need another kind of env than point_mass's continuous actions.
ENV_OF = {"dyna_q": "maze/dyna"}


def _env(algo: str) -> str:
    return ENV_OF.get(algo, ENV)


def _run_info(algo: str, seed: int, config) -> dict:
    return {"algo": algo, "env": _env(algo), "seed": seed, "config": configs.to_dict(config)}


# ------------------------------------------------------------------------ configs and guards


@pytest.mark.parametrize("algo", agents.names())
@pytest.mark.parametrize("preset", ["paper", "cpu", "test"])
def test_every_config_round_trips_through_config_json(algo, preset):
    record = agents.get(algo)
    config = record.preset(_env(algo), preset)
    text = json.dumps(_run_info(algo, 0, config))
    assert configs.from_dict(record.config_class, json.loads(text)["config"]) == config


def test_a_switched_planner_round_trips_with_its_own_config_class():
    config = configs.apply_overrides(agents.get("pets").preset(ENV, "test"),
                                     {"planner": "mppi", "planner_config.horizon": "7"})
    back = configs.from_dict(type(config), json.loads(json.dumps(configs.to_dict(config))))
    assert back == config and type(back.planner_config).__name__ == "MPPIConfig"


def test_from_dict_names_an_unknown_field():
    data = configs.to_dict(agents.get("pets").preset(ENV, "test"))
    data["model"]["hidden_sizez"] = [3]
    with pytest.raises(ValueError, match="'model.hidden_sizez'.*did you mean hidden_sizes"):
        configs.from_dict(agents.get("pets").config_class, data)


def _float_fields(config, prefix=""):
    """Dotted paths of every float (or optional float) field of a nested config."""
    hints = typing.get_type_hints(type(config))
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if dataclasses.is_dataclass(value):
            yield from _float_fields(value, prefix + field.name + ".")
            continue
        typ = hints[field.name]
        union = typing.get_origin(typ) in (typing.Union, types.UnionType)
        if typ is float or (union and float in typing.get_args(typ)):
            yield prefix + field.name


@pytest.mark.parametrize("algo", agents.names())
def test_every_float_field_rejects_inf_and_nan_at_config_time(algo):
    config = agents.get(algo).preset(_env(algo), "test")
    paths = list(_float_fields(config))
    assert any("learning_rate" in p or p.endswith("_lr") or p == "alpha" for p in paths), paths
    for path in paths:
        for text in ("inf", "-inf", "nan"):
            with pytest.raises(ValueError, match="is invalid"):
                configs.apply_overrides(config, {path: text})


def test_new_run_dir_guard(tmp_path):
    runs.check_new_run_dir(str(tmp_path / "missing" / "deeper"))  # created later: fine
    runs.check_new_run_dir(str(tmp_path))  # empty: fine
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="it is a file"):
        runs.check_new_run_dir(str(tmp_path / "file"))
    with pytest.raises(ValueError, match="is a file"):
        runs.check_new_run_dir(str(tmp_path / "file" / "run"))
    with pytest.raises(ValueError, match="a new or empty directory .*--resume"):
        runs.check_new_run_dir(str(tmp_path))
    with pytest.raises(ValueError, match="a directory path"):
        runs.check_new_run_dir("")


def test_resume_guard_names_the_differing_fields(tmp_path):
    config = agents.get("pets").preset(ENV, "test")
    info = _run_info("pets", 1, config)
    with pytest.raises(ValueError, match="a directory holding a run"):
        runs.check_resume_dir(str(tmp_path), info)
    runs.write_run_info(str(tmp_path), info)
    assert runs.check_resume_dir(str(tmp_path), info)
    other = _run_info("pets", 2, configs.override(config, "planner_config.population", "32"))
    with pytest.raises(ValueError, match=r"config.planner_config.population: 64 -> 32; seed: 1"):
        runs.check_resume_dir(str(tmp_path), other)
    sweep = {**info, "seeds": [0, 1]}
    with pytest.raises(ValueError, match="holds a run, not a sweep"):
        runs.check_resume_dir(str(tmp_path), sweep)


def test_differing_fields_are_dotted_paths():
    a = {"seed": 0, "config": {"model": {"lr": 1.0, "sizes": [1, 2]}, "x": 1}}
    b = {"seed": 0, "config": {"model": {"lr": 2.0, "sizes": [1, 3]}, "y": 1}}
    assert runs.differing_fields(a, b) == ["config.model.lr", "config.model.sizes", "config.x",
                                           "config.y"]
    assert runs.differing_fields(a, a) == []


@pytest.mark.parametrize("seed, ok", [(0, True), (2**32 - 1, True), (2**32, False),
                                      (99999999999, False), (2**64, False), (-1, False),
                                      (True, False), (1.0, False)])
def test_seeds_are_uint32(seed, ok):
    if ok:
        runs.check_seed(seed)
    else:
        with pytest.raises(ValueError, match=r"--seed=.* is invalid; allowed: an int in \[0, "
                                             "4294967295\\]"):
            runs.check_seed(seed)


def test_seed_ranges_stay_uint32():
    assert runs.check_seed_range(3, 2) == [3, 4]
    assert runs.check_seed_range(2**32 - 2, 2) == [2**32 - 2, 2**32 - 1]
    with pytest.raises(ValueError, match=r"--seeds=3 is invalid; allowed: an int in \[1, 2\]"):
        runs.check_seed_range(2**32 - 2, 3)
    with pytest.raises(ValueError, match="--seed_start=-1"):
        runs.check_seed_range(-1, 3)


# ----------------------------------------------------------------------------- TensorBoard


def test_tensorboard_holds_every_metric_once_across_a_resume(tmp_path):
    records = [{"episode": i, "env_steps": 10 * (i + 1), "episode_return": float(i),
                "model_mse": None if i == 0 else 0.5, "rolled_back": False} for i in range(4)]
    log = RunLog(str(tmp_path))
    for r in records[:3]:
        log.write(r)
    log.close()
    # A run killed after its checkpoint of 2 records (the 3rd point is past it) resumes.
    log = RunLog(str(tmp_path))
    log.resume_from(records[:2])
    log.write(records[3] | {"env_steps": 30})
    log.close()
    scalars = read_tensorboard_scalars(str(tmp_path))
    assert sorted(scalars) == ["episode", "episode_return", "model_mse"]  # numbers only
    assert [s for s, _ in scalars["episode_return"]] == [10, 20, 30]
    assert [v for _, v in scalars["episode"]] == [0, 1, 3]
    assert [s for s, _ in scalars["model_mse"]] == [20, 30]
    assert [r["episode"] for r in read_jsonl(str(tmp_path / "metrics.jsonl"))] == [0, 1, 3]


# ---------------------------------------------------------------------------- load_policy


# The learners whose policies this file loads back (a tiny run each); the newer learners check
# `experiments.evaluate` / `load_policy` on a run in their own test files.
SHORT = {"pets": {}, "sac": {"num_epochs": "2"}, "mbpo": {"num_epochs": "2"}, "dyna_q": {},
         "mbppo": {"num_episodes": "2"}}


@pytest.fixture(scope="module", params=list(SHORT))
def trained(request, tmp_path_factory):
    """A tiny finished run directory (as the train CLI writes it) of each algorithm."""
    name = request.param
    algo = agents.get(name)
    config = configs.apply_overrides(algo.preset(_env(name), "test"), SHORT[name])
    out = str(tmp_path_factory.mktemp(name))
    info = _run_info(name, 3, config)
    runs.write_run_info(out, info)
    make_policy, state, records = driver.train(
        algo, _env(name), config, seed=3, checkpoint_dir=os.path.join(out, runs.CHECKPOINT_DIR),
        meta=info,
    )
    return name, out, make_policy(state), records


def test_load_policy_gives_the_trained_policy(trained):
    name, out, (init_carry, act), records = trained
    policy, info = mbjax.load_policy(out)
    assert (info["algo"], info["env"], info["seed"]) == (name, _env(name), 3)
    assert info["iteration"] == len(records) and info["records"] == records
    assert info["env_steps"] == records[-1]["env_steps"]
    assert info["unit"] == agents.get(name).iteration_unit
    env = agents.get(name).env_of(info["config"])
    obs, key = env.reset(jax.random.PRNGKey(0)).obs, jax.random.PRNGKey(1)
    got = jax.jit(policy.act)(policy.init_carry(key), obs, key)
    want = jax.jit(act)(init_carry(key), obs, key)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-6, atol=1e-6)
    if hasattr(env, "num_actions"):  # a discrete env: one integer action
        assert got[1].shape == () and 0 <= int(got[1]) < env.num_actions
    else:
        assert got[1].shape == (env.action_size,) and bool(jnp.all(jnp.abs(got[1]) <= 1))
    # The warm start goes on step by step: the returned carry feeds the next step.
    carry2, action2, _ = jax.jit(policy.act)(got[0], obs, key)
    assert jax.tree_util.tree_structure(carry2) == jax.tree_util.tree_structure(got[0])
    ret = jax.jit(lambda k: acting.policy_return(env, *policy, k, 5))(key)
    assert np.isfinite(float(ret))


def test_load_policy_refuses_what_is_not_a_trained_run(tmp_path, trained):
    _, out, _, _ = trained
    with pytest.raises(ValueError, match="does not exist"):
        mbjax.load_policy(str(tmp_path / "nothing"))
    with pytest.raises(ValueError, match="holds no config.json"):
        mbjax.load_policy(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({**json.load(open(
        os.path.join(out, "config.json"))), "seed": 4}))
    with pytest.raises(CheckpointError, match="holds no checkpoints/"):
        mbjax.load_policy(str(tmp_path))
    os.symlink(os.path.join(out, "checkpoints"), tmp_path / "checkpoints")
    with pytest.raises(CheckpointError, match="different run: seed: 3 -> 4"):
        mbjax.load_policy(str(tmp_path))


def test_import_mbjax_stays_light():
    import subprocess
    import sys

    code = ("import sys, mbjax; assert 'jax' not in sys.modules; "
            "assert callable(mbjax.load_policy); print('ok')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout.strip() == "ok", proc.stderr


def test_a_stale_tmp_file_does_not_block_a_new_run_and_load_policy_checks_its_path(tmp_path):
    from mbjax import runs

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json.tmp").write_text("{half a write")  # an atomic write killed mid-way
    runs.check_new_run_dir(str(run))
    (run / "metrics.jsonl").write_text("")
    with pytest.raises(ValueError, match="a new or empty directory"):
        runs.check_new_run_dir(str(run))
    for bad in (None, "", 3):
        with pytest.raises(ValueError, match="run_dir=.* is invalid; allowed: a run directory"):
            runs.load_policy(bad)
