"""Sequence replay: mbjax.replay vs flashbax's trajectory buffer, measured in the same run.

    python -m benchmarks.replay_sampling --out=benchmarks/results/replay_sampling.json

Both buffers hold `--capacity` Transitions (obs `--obs_dim`, action `--action_dim`) of random
data split into episodes of random length (`--min_episode`..`--max_episode` steps); the ring has
wrapped once so the oldest item is mid-buffer. Measured (compile time apart, steady state after
block_until_ready, `benchmarks.common.compile_and_time`):

- sampling: `--batch_sizes` chunks of `--length` steps per call, for
  mbjax `sample_sequences` (never crosses an episode end or the write head);
  flashbax `sample` as is (crosses episode ends: the fraction of crossing chunks is reported);
  flashbax + mask glue (flashbax's chunk plus a [B, L] mask that drops steps after the first
  interior end: cheap, but chunks are partial and starts are not uniform over valid chunks);
  flashbax + exact glue (flashbax storage viewed as an mbjax ReplayBuffer and sampled by mbjax:
  the only way to get the same guarantee from flashbax, since its sampler takes no mask/indices).
- insert: one compiled call = a `lax.scan` of adds totalling `--insert_items` transitions, in
  adds of each of `--insert_sizes` items (the buffer is a scan carry, updated in place; one copy
  of the buffer per call is included, `buffer_copy_s` shows its size).
- code size: non-blank, non-comment, non-docstring lines of mbjax's sequence code and of each
  flashbax glue function here.

flashbax is an optional import: without it only the mbjax rows are written, with a note.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from benchmarks.common import compile_and_time, device_info, write_json
from mbjax import replay
from mbjax.types import Transition

try:
    import flashbax
except ImportError:  # optional: only for this comparison, not a project dependency
    flashbax = None

FLAGS = flags.FLAGS
flags.DEFINE_string("out", "benchmarks/results/replay_sampling.json", "JSON output path.")
flags.DEFINE_integer("capacity", 100_000, "Buffer capacity (transitions).")
flags.DEFINE_integer("obs_dim", 17, "Observation size.")
flags.DEFINE_integer("action_dim", 6, "Action size.")
flags.DEFINE_list("batch_sizes", ["16", "256"], "Chunks per sampling call.")
flags.DEFINE_integer("length", 50, "Chunk length (steps).")
flags.DEFINE_integer("min_episode", 100, "Shortest episode in the random data.")
flags.DEFINE_integer("max_episode", 1000, "Longest episode in the random data.")
flags.DEFINE_list("insert_sizes", ["1", "256"], "Transitions per add call in the insert test.")
flags.DEFINE_integer("insert_items", 100_000, "Transitions inserted per timed (scanned) call.")
flags.DEFINE_integer("repeats", 5, "Minimum steady-state calls per measurement.")
flags.DEFINE_float("min_time_s", 1.0, "Minimum steady-state seconds per measurement.")


def random_transitions(n: int, obs_dim: int, action_dim: int, seed: int) -> Transition:
    """n steps of random data; episodes of random length end by termination or time limit."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(FLAGS.min_episode, FLAGS.max_episode + 1, n // FLAGS.min_episode + 1)
    end_steps = np.cumsum(lengths) - 1
    end = np.zeros(n, bool)
    end[end_steps[end_steps < n]] = True
    by_limit = rng.random(n) < 0.5
    obs = rng.standard_normal((n, obs_dim), np.float32)
    return Transition(
        obs=jnp.asarray(obs),
        action=jnp.asarray(rng.uniform(-1, 1, (n, action_dim)).astype(np.float32)),
        reward=jnp.asarray(rng.standard_normal(n, np.float32)),
        next_obs=jnp.asarray(obs + 0.1),
        terminated=jnp.asarray(end & ~by_limit, jnp.float32),
        truncated=jnp.asarray(end & by_limit, jnp.float32),
    )


def _flashbax_version() -> str | None:
    if flashbax is None:
        return None
    from importlib.metadata import version

    return version("flashbax")


def _first(tree: Any) -> Any:
    return jax.tree_util.tree_map(lambda x: x[0], tree)


# ----- flashbax glue (what a sequence model in mbjax would need on top of flashbax) -----------


def flashbax_masked_glue(sample: Any) -> tuple[Any, jax.Array]:
    """flashbax chunk [B, L] -> (chunk, step mask [B, L]): steps after the first end are masked."""
    exp = sample.experience
    ends = (exp.terminated > 0) | (exp.truncated > 0)
    # A step is kept if no EARLIER step of the chunk ended an episode.
    earlier = jnp.cumsum(ends, axis=1) - ends
    return exp, earlier == 0


def flashbax_exact_glue(state: Any, key: jax.Array, batch_size: int, length: int) -> Any:
    """Exact sampling from flashbax storage ([1, T] layout) by viewing it as an mbjax buffer."""
    cap = jax.tree_util.tree_leaves(state.experience)[0].shape[1]
    view = replay.ReplayBuffer(
        data=_first(state.experience),
        insert_pos=state.current_index.astype(jnp.int32),
        size=jnp.where(state.is_full, cap, state.current_index).astype(jnp.int32),
    )
    return replay.sample_sequences(view, key, batch_size, length)


def code_lines(*objs: Callable | type) -> int:
    """Lines of code of functions/classes, not counting blanks, comments or docstrings."""
    total = 0
    for obj in objs:
        src = textwrap.dedent(inspect.getsource(obj))
        doc_lines: set[int] = set()
        for node in ast.walk(ast.parse(src)):
            body = getattr(node, "body", None)
            if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(
                getattr(body[0], "value", None), ast.Constant
            ) and isinstance(body[0].value.value, str):
                doc_lines.update(range(body[0].lineno, body[0].end_lineno + 1))
        total += sum(
            1 for i, line in enumerate(src.splitlines(), 1)
            if line.strip() and not line.strip().startswith("#") and i not in doc_lines
        )
    return total


# ----- measurements ---------------------------------------------------------------------------


def _row(kind: str, library: str, variant: str, timing: dict, items: int, **extra: Any) -> dict:
    per_s = items / timing["seconds_per_call"]
    row = {"kind": kind, "library": library, "variant": variant, **extra,
           "compile_s": timing["compile_s"], "seconds_per_call": timing["seconds_per_call"],
           "cpu_seconds_per_call": timing["cpu_seconds_per_call"], "calls": timing["calls"]}
    row["chunks_per_s" if kind == "sample" else "transitions_per_s"] = per_s
    if kind == "sample":
        row["transitions_per_s"] = per_s * extra["length"]
    return row


def _timed(fn: Callable, *args: Any) -> dict:
    return compile_and_time(fn, *args, repeats=FLAGS.repeats, min_time_s=FLAGS.min_time_s)


def _crossing_fraction(exp: Any) -> float:
    """Fraction of chunks with an episode end before their last step (what mbjax never returns)."""
    ends = (np.asarray(exp.terminated) > 0) | (np.asarray(exp.truncated) > 0)
    return float(ends[:, :-1].any(axis=1).mean())


def measure_sampling(data: Transition, batch_sizes: Sequence[int], length: int) -> list[dict]:
    cap = FLAGS.capacity
    # Fill past capacity by a third so both rings have wrapped (oldest item mid-buffer).
    extra = cap // 3
    buf = replay.add(replay.add(replay.init(cap, _first(data)),
                                jax.tree_util.tree_map(lambda x: x[:extra], data)),
                     jax.tree_util.tree_map(lambda x: x[extra:], data))
    key = jax.random.PRNGKey(0)
    rows = []
    for b in batch_sizes:
        fn = lambda buf, k, b=b: replay.sample_sequences(buf, k, b, length)
        timing = _timed(fn, buf, key)  # first: an earlier jit of `fn` would hide compile time
        seqs = jax.jit(fn)(buf, key)
        rows.append(_row("sample", "mbjax", "sample_sequences (exact)", timing, b,
                         batch_size=b, length=length, crossing_fraction=_crossing_fraction(
                             seqs.data), valid=bool(seqs.valid.all())))
    if flashbax is None:
        return rows
    fb = flashbax.make_trajectory_buffer(
        add_batch_size=1, sample_batch_size=1, sample_sequence_length=length, period=1,
        min_length_time_axis=length, max_length_time_axis=cap)
    add1 = lambda n: jax.tree_util.tree_map(lambda x: x[None, :n], data)
    state = jax.jit(fb.add)(fb.init(_first(data)), add1(extra))
    state = jax.jit(fb.add)(state, jax.tree_util.tree_map(lambda x: x[None, extra:], data))
    for b in batch_sizes:
        raw = lambda s, k, b=b: flashbax.trajectory_buffer.sample(s, k, b, length, 1)
        masked = lambda s, k, b=b: flashbax_masked_glue(raw(s, k, b))
        exact = lambda s, k, b=b: flashbax_exact_glue(s, k, b, length)
        for variant, fn in [("sample (crosses episode ends)", raw),
                            ("sample + mask glue (partial chunks)", masked),
                            ("storage + exact glue (mbjax sampler)", exact)]:
            timing = _timed(fn, state, key)
            crossing = None
            if fn is raw:
                crossing = _crossing_fraction(jax.jit(raw)(state, key).experience)
            rows.append(_row("sample", "flashbax", variant, timing, b, batch_size=b,
                             length=length, crossing_fraction=crossing))
    return rows


def measure_insert(data: Transition, sizes: Sequence[int], total: int) -> list[dict]:
    cap = FLAGS.capacity
    rows = []
    buf = replay.init(cap, _first(data))
    copy = _timed(lambda b: jax.tree_util.tree_map(lambda x: x + 0, b), buf)
    state = fb = None
    if flashbax is not None:
        fb = flashbax.make_trajectory_buffer(
            add_batch_size=1, sample_batch_size=1, sample_sequence_length=2, period=1,
            min_length_time_axis=2, max_length_time_axis=cap)
        state = fb.init(_first(data))
    for n in sizes:
        steps = total // n
        chunks = jax.tree_util.tree_map(lambda x: x[: steps * n].reshape((steps, n) + x.shape[1:]),
                                        data)

        def mb(buf, chunks):
            return jax.lax.scan(lambda b, c: (replay.add(b, c), None), buf, chunks)[0]

        common = dict(items_per_add=n, adds_per_call=steps, buffer_copy_s=copy["seconds_per_call"])
        rows.append(_row("insert", "mbjax", "add", _timed(mb, buf, chunks), steps * n, **common))
        if fb is not None:
            def fx(state, chunks):
                step = lambda s, c: (fb.add(s, jax.tree_util.tree_map(lambda x: x[None], c)), None)
                return jax.lax.scan(step, state, chunks)[0]

            rows.append(_row("insert", "flashbax", "trajectory add", _timed(fx, state, chunks),
                             steps * n, **common))
    return rows


def main(argv: Sequence[str]) -> None:
    del argv
    # No persistent compilation cache here: compile time is one of the measured quantities.
    batch_sizes = [int(b) for b in FLAGS.batch_sizes]
    sizes = [int(s) for s in FLAGS.insert_sizes]
    data = random_transitions(FLAGS.capacity + FLAGS.capacity // 3, FLAGS.obs_dim,
                              FLAGS.action_dim, seed=0)
    payload: dict[str, Any] = {
        "benchmark": "replay_sampling",
        "device": device_info(),
        "settings": {k: FLAGS[k].value for k in ("capacity", "obs_dim", "action_dim", "length",
                                                  "min_episode", "max_episode", "insert_items",
                                                  "repeats", "min_time_s")}
        | {"batch_sizes": batch_sizes, "insert_sizes": sizes},
        "flashbax": _flashbax_version(),
        "note": "seconds_per_call is the median steady-state wall time after block_until_ready; "
                "compile_s is a cold jit(...).lower(...).compile() (persistent cache off). "
                "crossing_fraction: share of sampled chunks with an episode end before "
                "their last step. Insert rows include one buffer copy per call "
                "(buffer_copy_s).",
        "code_lines": {
            "mbjax_sequence_code": code_lines(
                replay.Sequences, replay.transition_episode_end, replay._oldest_slot,
                replay.sequence_starts, replay.sample_sequences),
            "flashbax_mask_glue": code_lines(flashbax_masked_glue),
            "flashbax_exact_glue (plus mbjax_sequence_code)": code_lines(flashbax_exact_glue),
        },
        "results": [],
    }
    if flashbax is None:
        payload["note"] += " flashbax is not installed: only mbjax rows were measured."
        print("flashbax is not installed: measuring mbjax only", flush=True)
    for measure in (lambda: measure_sampling(data, batch_sizes, FLAGS.length),
                    lambda: measure_insert(data, sizes, FLAGS.insert_items)):
        for row in measure():
            payload["results"].append(row)
            rate = row.get("chunks_per_s") or row["transitions_per_s"]
            size = row.get("batch_size", row.get("items_per_add"))
            print(f"{row['kind']:6s} {row['library']:8s} {row['variant']:38s} {size:>4} "
                  f"compile={row['compile_s']:.2f}s {row['seconds_per_call'] * 1e3:9.3f} ms/call "
                  f"{rate:14,.0f}/s", flush=True)
            write_json(FLAGS.out, payload)  # after every row: a killed run keeps what it measured
    write_json(FLAGS.out, payload)


if __name__ == "__main__":
    app.run(main)
