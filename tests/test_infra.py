"""Replay buffer, checkpoints, config overrides and metrics files."""

import dataclasses
import json
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mbjax import configs, replay
from mbjax.checkpoint import Checkpointer, CheckpointError
from mbjax.logging import MetricsWriter, plot_curve, read_jsonl


def test_replay_ring_buffer_keeps_newest_and_size():
    buf = replay.init(5, {"x": jnp.zeros(2)})
    buf = replay.add(buf, {"x": jnp.arange(6.0).reshape(3, 2)})
    assert int(buf.size) == 3 and int(buf.insert_pos) == 3
    np.testing.assert_allclose(replay.valid_mask(buf), [1, 1, 1, 0, 0])
    buf = replay.add(buf, {"x": 10 + jnp.arange(8.0).reshape(4, 2)})
    assert int(buf.size) == 5 and int(buf.insert_pos) == 2
    # Slots 0,1 were overwritten by the last two of the second batch (wrap-around).
    np.testing.assert_allclose(buf.data["x"][:, 0], [14, 16, 4, 10, 12])
    with pytest.raises(ValueError, match="capacity"):
        replay.add(buf, {"x": jnp.zeros((6, 2))})
    with pytest.raises(ValueError, match="capacity"):
        replay.init(0, {"x": jnp.zeros(2)})


def test_replay_sample_only_from_filled_part():
    buf = replay.init(100, {"x": jnp.zeros(())})
    buf = replay.add(buf, {"x": 1.0 + jnp.arange(10.0)})
    batch = replay.sample(buf, jax.random.PRNGKey(0), 500)
    assert batch["x"].shape == (500,)
    assert float(batch["x"].min()) >= 1.0 and float(batch["x"].max()) <= 10.0
    assert len(np.unique(batch["x"])) == 10


def test_replay_add_masked_compacts_valid_items():
    buf = replay.init(8, {"x": jnp.zeros(())})
    buf = replay.add_masked(buf, {"x": jnp.arange(5.0)}, jnp.array([1, 0, 1, 1, 0]))
    assert int(buf.size) == 3
    np.testing.assert_allclose(buf.data["x"][:3], [0, 2, 3])
    buf = replay.add_masked(buf, {"x": 10 + jnp.arange(3.0)}, jnp.array([0, 1, 1]))
    assert int(buf.size) == 5
    np.testing.assert_allclose(buf.data["x"][:5], [0, 2, 3, 11, 12])
    # Near the end of the buffer, invalid items that wrap around must not overwrite live slots.
    buf = replay.add_masked(buf, {"x": 20 + jnp.arange(5.0)}, jnp.array([1, 0, 0, 0, 0]))
    assert int(buf.size) == 6
    np.testing.assert_allclose(buf.data["x"][:6], [0, 2, 3, 11, 12, 20])
    # Invalid items (e.g. NaN states past a termination) never enter the buffer at all.
    buf = replay.add_masked(buf, {"x": jnp.array([30.0, jnp.nan])}, jnp.array([1, 0]))
    assert int(buf.size) == 7 and np.isfinite(np.asarray(buf.data["x"])).all()


def test_normalizer_ignores_nan_in_unused_slots():
    from mbjax.models import fit_normalizer

    x = jnp.array([[1.0], [3.0], [jnp.nan]])
    n = fit_normalizer(x, jnp.array([1, 1, 0]))
    np.testing.assert_allclose(n.mean, [2.0])
    np.testing.assert_allclose(n.std, [1.0])


def test_checkpoint_round_trip_and_mismatch(tmp_path):
    state = {"w": jnp.arange(6.0).reshape(2, 3), "key": jax.random.PRNGKey(3), "n": jnp.int32(7)}
    ck = Checkpointer(str(tmp_path / "ck"))
    ck.save(1, state, {"episode": 1})
    ck.save(2, jax.tree_util.tree_map(lambda x: x + 1, state), {"episode": 2})
    restored, meta = Checkpointer(str(tmp_path / "ck")).restore(state)
    assert meta == {"episode": 2}
    np.testing.assert_array_equal(restored["w"], np.asarray(state["w"]) + 1)
    assert restored["n"].dtype == np.int32
    wrong = dict(state, w=jnp.zeros((3, 3)))
    with pytest.raises(CheckpointError, match=r"\['w'\].*float32\[2, 3\]"):
        ck.restore(wrong)


def test_checkpoint_keeps_zero_size_leaves(tmp_path):
    # MJX env states (Dreamer and MBPO keep them in their run state) hold zero-size arrays,
    # which orbax alone refuses to save.
    state = {"w": jnp.ones(3), "act": jnp.zeros((0,)), "nested": [jnp.zeros((2, 0), jnp.int32)]}
    ck = Checkpointer(str(tmp_path / "ck"))
    ck.save(1, state, {"episode": 1})
    restored, _ = ck.restore(state)
    assert jax.tree_util.tree_structure(restored) == jax.tree_util.tree_structure(state)
    for got, want in zip(jax.tree.leaves(restored), jax.tree.leaves(state), strict=True):
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    with pytest.raises(CheckpointError, match="does not match the current config"):
        ck.restore(dict(state, act=jnp.zeros((1,))))  # a leaf that is no longer empty


def test_checkpoint_missing_and_corrupt(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        Checkpointer(str(tmp_path / "empty")).restore({"a": jnp.zeros(2)})
    ck = Checkpointer(str(tmp_path / "ck"))
    ck.save(1, {"a": jnp.ones(4)}, {})
    # Corrupt every data file of the saved state.
    for root, _, files in os.walk(tmp_path / "ck" / "1" / "state"):
        for name in files:
            with open(os.path.join(root, name), "wb") as f:
                f.write(b"garbage")
    with pytest.raises(CheckpointError, match="corrupt"):
        Checkpointer(str(tmp_path / "ck")).restore({"a": jnp.zeros(4)})


@dataclasses.dataclass(frozen=True)
class _Inner:
    hidden_sizes: tuple[int, ...] = (8, 8)
    lr: float = 1e-3


@dataclasses.dataclass(frozen=True)
class _Outer:
    name: str = "cem"
    steps: int = 3
    flag: bool = False
    limit: int | None = None
    inner: _Inner = _Inner()

    def __post_init__(self):
        if self.steps <= 0:
            raise ValueError(f"steps must be positive, got {self.steps}")


def test_config_overrides_parse_types_and_reject_bad_input():
    cfg = configs.apply_overrides(
        _Outer(),
        {"steps": "5", "flag": "true", "limit": "none", "inner.hidden_sizes": "4,4,4",
         "inner.lr": "0.1"},
    )
    assert cfg == _Outer(steps=5, flag=True, limit=None, inner=_Inner((4, 4, 4), 0.1))
    assert configs.override(_Outer(), "limit", "9").limit == 9
    with pytest.raises(ValueError, match="did you mean steps"):
        configs.override(_Outer(), "stepz", "1")
    with pytest.raises(ValueError, match="expected int"):
        configs.override(_Outer(), "steps", "many")
    with pytest.raises(ValueError, match="steps must be positive"):
        configs.override(_Outer(), "steps", "-1")
    assert configs.from_dict(_Outer, configs.to_dict(cfg)) == cfg
    # Overrides of one dataclass are validated together, so their order does not matter.
    both = configs.apply_overrides(_Coupled(), {"b": "5", "a": "4"})
    assert (both.a, both.b) == (4, 5)
    with pytest.raises(ValueError, match="a must be below b"):
        configs.apply_overrides(_Coupled(), {"a": "4"})


@dataclasses.dataclass(frozen=True)
class _Coupled:
    a: int = 1
    b: int = 2

    def __post_init__(self):
        if self.a >= self.b:
            raise ValueError("a must be below b")


@dataclasses.dataclass(frozen=True)
class _Fast:
    speed: int = 1


@dataclasses.dataclass(frozen=True)
class _Slow:
    delay: float = 0.5
    speed: int = 0


_KINDS = {"fast": _Fast, "slow": _Slow}


def _kind_defaults(name):
    if name not in _KINDS:
        raise ValueError(f"kind={name!r} is invalid; allowed: one of {sorted(_KINDS)}")
    return _KINDS[name]()


@dataclasses.dataclass(frozen=True)
class _Selecting:
    """`kind` selects the class of `kind_config` (like PETS' planner / planner_config)."""

    kind: str = configs.selector("kind_config", default_for=_kind_defaults, default="fast")
    kind_config: Any = None
    limit: int = 10

    def __post_init__(self):
        if self.kind_config is None:
            object.__setattr__(self, "kind_config", _kind_defaults(self.kind))
        if not isinstance(self.kind_config, _KINDS[self.kind]):
            raise ValueError(f"kind_config is a {type(self.kind_config).__name__}, not {self.kind}")


@dataclasses.dataclass(frozen=True)
class _Holder:
    inner: _Selecting = _Selecting()


def test_selector_override_resets_the_selected_field_before_its_sub_fields():
    assert configs.selectors(_Selecting) == {"kind": ("kind_config", _kind_defaults)}
    tuned = _Selecting(kind_config=_Fast(speed=5))
    # The selector is applied first whatever the order: sub-fields land on the new type.
    for overrides in ({"kind_config.delay": "2", "kind": "slow"},
                      {"kind": "slow", "kind_config.delay": "2"}):
        assert configs.apply_overrides(tuned, overrides) == _Selecting("slow", _Slow(delay=2.0))
    # Switching drops the old type's settings (speed=5 is not carried over to _Slow).
    assert configs.override(tuned, "kind", "slow").kind_config == _Slow()
    # The current value keeps the selected field as it is, with its own overrides on top.
    assert configs.override(tuned, "kind", "fast") == tuned
    kept = configs.apply_overrides(tuned, {"kind": "fast", "kind_config.speed": "7", "limit": "3"})
    assert kept == _Selecting("fast", _Fast(speed=7), limit=3)
    # Without the switch, a field of the other type is unknown to the current one.
    with pytest.raises(ValueError, match="unknown config field 'kind_config.delay' in _Fast"):
        configs.override(tuned, "kind_config.delay", "1")
    with pytest.raises(ValueError, match="kind='medium' is invalid; allowed"):
        configs.override(tuned, "kind", "medium")
    # Nested anywhere, and rebuilt from JSON with the class its selector names.
    held = configs.apply_overrides(_Holder(),
                                   {"inner.kind": "slow", "inner.kind_config.speed": "4"})
    assert held.inner.kind_config == _Slow(speed=4)
    assert configs.from_dict(_Holder, configs.to_dict(held)) == held
    with pytest.raises(ValueError, match="is set and also given sub-fields"):
        configs.apply_overrides(_Holder(), {"inner.limit.x": "1", "inner.limit": "2"})


def test_metrics_writer_rewrite_and_torn_line(tmp_path):
    path = str(tmp_path / "m.jsonl")
    w = MetricsWriter(path)
    w.write({"episode": 0, "r": np.float32(1.5)})
    w.write({"episode": 1, "r": jnp.asarray(2.5)})
    with open(path, "a") as f:
        f.write('{"episode": 2, "r"')  # a kill mid-write
    assert [r["r"] for r in read_jsonl(path)] == [1.5, 2.5]
    w.rewrite([{"episode": 0, "r": 1.5}])
    assert read_jsonl(path) == [{"episode": 0, "r": 1.5}]
    png = str(tmp_path / "c.png")
    plot_curve(png, [1, 2, 3], [[1, 2, 3], [2, 3, 4]])
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    json.dumps(read_jsonl(path))


# ------------------------------------------------------ checkpoints: refusal, fallback, run meta


def _corrupt_newest(directory, step):
    """Deletes one data file of `step`'s state (what a disk fault or a bad copy leaves)."""
    data = os.path.join(directory, str(step), "state", "d")
    os.remove(os.path.join(data, sorted(os.listdir(data))[0]))


def test_checkpoint_save_at_or_below_the_newest_step_raises(tmp_path):
    ck = Checkpointer(str(tmp_path / "ck"))
    ck.save(3, {"a": jnp.ones(2)}, {})
    for step in (1, 3):  # orbax would silently skip these; the run would have no checkpoints
        with pytest.raises(CheckpointError, match=f"cannot save checkpoint step {step}.*step 3"):
            ck.save(step, {"a": jnp.ones(2)}, {})
    ck.save(4, {"a": jnp.ones(2)}, {})
    assert ck.all_steps() == [3, 4]


def test_restore_falls_back_past_a_corrupt_newest_step(tmp_path):
    directory = str(tmp_path / "ck")
    ck = Checkpointer(directory)
    for step in (1, 2):
        ck.save(step, {"a": jnp.full(3, float(step))}, {"step": step})
    _corrupt_newest(directory, 2)
    notices = []
    step, state, meta = Checkpointer(directory).restore_newest_valid(
        {"a": jnp.zeros(3)}, on_notice=notices.append)
    assert step == 1 and meta == {"step": 1}
    np.testing.assert_array_equal(state["a"], [1.0, 1.0, 1.0])
    assert len(notices) == 1 and "step 2" in notices[0] and "resuming from step 1" in notices[0]
    # The unreadable step is kept aside, so the run can save step 2 again.
    assert sorted(os.listdir(directory)) == ["1", "2.corrupt"]
    _corrupt_newest(directory, 1)
    with pytest.raises(CheckpointError, match="no checkpoint to resume.*unreadable"):
        Checkpointer(directory).restore_newest_valid({"a": jnp.zeros(3)})


def test_run_host_refuses_foreign_checkpoints_and_a_different_run(tmp_path):
    from toy_program import toy_program

    from mbjax.agents.program import run_host

    ck = str(tmp_path / "ck")
    meta = {"algo": "toy", "seed": 0, "config": {"planner_config": {"population": 64}}}
    run_host(toy_program(3), 0, checkpoint_dir=ck, meta=meta)
    with pytest.raises(CheckpointError, match="already holds checkpoints"):
        run_host(toy_program(3), 1, checkpoint_dir=ck, meta=dict(meta, seed=1))
    other = {**meta, "seed": 1, "config": {"planner_config": {"population": 100}}}
    with pytest.raises(CheckpointError, match=r"config\.planner_config\.population: 64 -> 100; "
                                              r"seed: 0 -> 1"):
        run_host(toy_program(3), 1, checkpoint_dir=ck, resume=True, meta=other)
    with pytest.raises(CheckpointError, match="no checkpoint to resume"):
        run_host(toy_program(3), 0, checkpoint_dir=str(tmp_path / "none"), resume=True)
    assert not (tmp_path / "none").exists()  # looking for a checkpoint creates nothing


def test_run_host_resume_skips_a_corrupt_newest_checkpoint(tmp_path):
    from toy_program import toy_program, without_wall_time

    from mbjax.agents.program import run_host

    full_state, full = run_host(toy_program(5), 0)
    ck = str(tmp_path / "ck")
    run_host(toy_program(3), 0, checkpoint_dir=ck)  # a run stopped after 3 of 5 iterations
    _corrupt_newest(ck, 3)
    notices, restored = [], []
    state, records = run_host(toy_program(5), 0, checkpoint_dir=ck, resume=True,
                              on_notice=notices.append,
                              on_resume=lambda r: restored.append(len(r)))
    assert restored == [2] and "resuming from step 2" in notices[0]
    assert without_wall_time(records) == without_wall_time(full)
    np.testing.assert_array_equal(state["x"], full_state["x"])


# ------------------------------------------------------------------------ non-finite training


def test_rollback_skips_nonfinite_iterations_in_every_runner():
    from toy_program import toy_program, without_wall_time

    from mbjax.agents.program import make_pure_train, run_host
    from mbjax.agents.sweep import run_sweep

    program = toy_program(8, nan_below=0.4, on_nonfinite="rollback")
    state, metrics = jax.jit(make_pure_train(program))(jax.random.PRNGKey(0))
    bad = np.asarray(metrics["nonfinite"])
    assert bad.any() and not bad.all()
    # Every rolled-back iteration left the state as it was, apart from the key: the counter
    # counts only the iterations that stayed, and nothing NaN remains.
    assert int(state["i"]) == (~bad).sum() and np.isfinite(np.asarray(state["x"])).all()
    host_state, records = run_host(program, 0)
    assert [r["rolled_back"] for r in records] == bad.tolist()
    np.testing.assert_array_equal(host_state["x"], state["x"])
    finite = [r["episode_return"] for r in records if not r["rolled_back"]]
    assert records[-1]["best_return"] == max(finite)
    states, per_seed, _ = run_sweep(program, [0, 1])
    assert repr(without_wall_time(per_seed[0])) == repr(without_wall_time(records))  # NaN-safe
    assert int(states["i"][0]) == int(state["i"])
    with pytest.raises(FloatingPointError, match="iteration 0"):
        run_host(toy_program(8, nan_below=0.4), 0)  # "raise" (the default) keeps raising


def test_program_on_nonfinite_is_validated_and_rollback_needs_a_key():
    from mbjax.agents.program import Program, Segment, run_host

    with pytest.raises(ValueError, match=r"Program.on_nonfinite='skip' is invalid; allowed: "
                                         r"one of \['raise', 'rollback'\]"):
        Program(lambda key: {}, (), lambda i, m: {}, on_nonfinite="skip")

    def step(state):
        return {"x": state["x"] + 1}, {"nonfinite": False, "episode_return": 0.0, "env_steps": 1}

    keyless = Program(lambda key: {"x": jnp.float32(0)}, (Segment(step, 1),),
                      lambda i, m: {"env_steps": 1, "episode_return": 0.0}, "rollback")
    with pytest.raises(ValueError, match="needs a learner state with a `key` field"):
        run_host(keyless, 0)
