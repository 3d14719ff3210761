"""Sequence replay: `replay.sample_sequences` against a numpy enumeration of the valid chunks."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mbjax import replay
from mbjax.types import Transition

OBS, ACT = 3, 2


def _items(ids: np.ndarray, term: np.ndarray, trunc: np.ndarray) -> Transition:
    """Transitions whose obs[:, 0] is a global step id, so a chunk's ids reveal its positions."""
    n = len(ids)
    obs = np.repeat(ids[:, None].astype(np.float32), OBS, axis=1)
    return Transition(
        obs=jnp.asarray(obs),
        action=jnp.zeros((n, ACT)),
        reward=jnp.asarray(ids, jnp.float32),
        next_obs=jnp.asarray(obs + 1),
        terminated=jnp.asarray(term, jnp.float32),
        truncated=jnp.asarray(trunc, jnp.float32),
    )


def _empty(capacity: int) -> replay.ReplayBuffer:
    one = _items(np.zeros(1), np.zeros(1), np.zeros(1))
    return replay.init(capacity, jax.tree_util.tree_map(lambda x: x[0], one))


def _reference_starts(ends: list[bool], length: int) -> set[int]:
    """Logical starts j (0 = oldest stored item) whose chunk fits and has no interior end."""
    return {
        j for j in range(len(ends) - length + 1) if not any(ends[j : j + length - 1])
    }


class Stream:
    """Feeds random episodes into a ring buffer and mirrors the stored items in plain Python."""

    def __init__(self, capacity: int, seed: int):
        self.buf = _empty(capacity)
        self.rng = np.random.default_rng(seed)
        self.ids: list[int] = []
        self.ends: list[bool] = []
        self.next_id = 0

    def add(self, n: int, masked: bool = False) -> None:
        rng = self.rng
        ids = self.next_id + np.arange(n)
        # Episodes of random length: each step ends one with prob 0.15, by either flag.
        end = rng.random(n) < 0.15
        by_limit = rng.random(n) < 0.5
        term, trunc = end & ~by_limit, end & by_limit
        items = _items(ids, term, trunc)
        keep = rng.random(n) < 0.7 if masked else np.ones(n, bool)
        if masked:
            self.buf = replay.add_masked(self.buf, items, jnp.asarray(keep))
        else:
            self.buf = replay.add(self.buf, items)
        self.next_id += n
        self.ids += [int(i) for i, k in zip(ids, keep, strict=True) if k]
        self.ends += [bool(e) for e, k in zip(end, keep, strict=True) if k]
        cap = self.buf.capacity
        self.ids, self.ends = self.ids[-cap:], self.ends[-cap:]  # what the ring still holds


_sample = jax.jit(replay.sample_sequences, static_argnames=("batch_size", "length", "episode_end"))
_starts = jax.jit(replay.sequence_starts, static_argnames=("length", "episode_end"))


@pytest.mark.parametrize("length", [1, 4, 7])
def test_chunks_never_cross_episode_end_or_write_head(length):
    capacity = 23
    stream = Stream(capacity, seed=length)
    key = jax.random.PRNGKey(0)
    checked_wrapped = checked_partial = 0
    for step in range(25):  # partial fill, first wrap, many wraps; add and add_masked
        stream.add(int(stream.rng.integers(1, 9)), masked=step % 3 == 2)
        buf = stream.buf
        assert int(buf.size) == len(stream.ids)
        ref = _reference_starts(stream.ends, length)
        got = np.flatnonzero(np.asarray(_starts(buf, length)))
        assert set(got.tolist()) == ref
        key, sub = jax.random.split(key)
        seqs = _sample(buf, sub, batch_size=64, length=length)
        assert seqs.data.obs.shape == (64, length, OBS)
        valid = np.asarray(seqs.valid)
        assert valid.shape == (64,) and (valid.all() if ref else not valid.any())
        if not ref:
            continue
        chunk_ids = np.asarray(seqs.data.obs[:, :, 0]).astype(int)
        # Every chunk is the stored items at some reference-valid start, in time order. Ids are
        # global step counters, so a wrap from the newest item to the oldest would show as a
        # backwards jump and an item that was overwritten could not appear.
        id_to_pos = {i: p for p, i in enumerate(stream.ids)}
        for row in chunk_ids:
            start = id_to_pos[int(row[0])]
            assert start in ref
            np.testing.assert_array_equal(row, stream.ids[start : start + length])
        # Direct check of the boundary rule: only the last item of a chunk may end an episode.
        interior = np.asarray(seqs.data.terminated[:, :-1] + seqs.data.truncated[:, :-1])
        assert (interior == 0).all()
        checked_wrapped += stream.next_id > capacity
        checked_partial += stream.next_id <= capacity
    assert checked_wrapped and checked_partial  # both regimes were exercised


def test_every_valid_start_reachable_and_uniform():
    capacity, length = 20, 3
    buf = _empty(capacity)
    # Fill past capacity so the ring has wrapped (oldest item in slot 6): 26 items, episodes
    # ending at ids 4, 9, 10, 17, 25 -> the last 20 items are ids 6..25.
    ids = np.arange(26)
    end = np.isin(ids, [4, 9, 10, 17, 25])
    buf = replay.add(buf, _items(ids[:13], end[:13], np.zeros(13)))
    buf = replay.add(buf, _items(ids[13:], np.zeros(13), end[13:]))  # truncations end them too
    stored = list(range(6, 26))
    ref = _reference_starts([bool(end[i]) for i in stored], length)
    want = sorted(stored[j] for j in ref)
    assert want == [6, 7, 11, 12, 13, 14, 15, 18, 19, 20, 21, 22, 23]

    n = 40_000
    seqs = _sample(buf, jax.random.PRNGKey(1), batch_size=n, length=length)
    first = np.asarray(seqs.data.obs[:, 0, 0]).astype(int)
    values, counts = np.unique(first, return_counts=True)
    assert values.tolist() == want  # every valid start is hit, nothing else is
    expected = n / len(want)
    # Binomial std is ~sqrt(expected) ~ 53; 10% of expected is ~5 std: a fair sampler passes,
    # one biased by a start's position or episode does not.
    assert np.abs(counts - expected).max() < 0.1 * expected
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 42.0  # 12 dof: p < 1e-4 above this


def test_no_retrace_as_buffer_fills():
    chex.clear_trace_counter()

    @jax.jit
    @chex.assert_max_traces(n=1)
    def sample(buf, key):
        return replay.sample_sequences(buf, key, 8, 5)

    stream = Stream(capacity=16, seed=3)
    valids = [bool(sample(stream.buf, jax.random.PRNGKey(0)).valid.all())]  # empty buffer
    for step in range(12):  # sizes 0 -> full -> wrapped, insert_pos all over the ring
        stream.add(3, masked=step % 2 == 1)
        valids.append(bool(sample(stream.buf, jax.random.PRNGKey(step)).valid.all()))
    assert not valids[0] and any(valids)  # the traced size really changed the result


def test_no_valid_chunk_returns_invalid_zeros():
    buf = _empty(10)
    for fill in [
        lambda b: b,  # empty
        lambda b: replay.add(b, _items(np.arange(1, 4), np.zeros(3), np.zeros(3))),  # 3 < length
        # Episodes of length 2 only (every other step ends one): no chunk of 4 fits in one.
        lambda b: replay.add(b, _items(np.arange(1, 11), np.arange(10) % 2, np.zeros(10))),
    ]:
        seqs = _sample(fill(buf), jax.random.PRNGKey(0), batch_size=5, length=4)
        assert seqs.valid.shape == (5,) and not np.asarray(seqs.valid).any()
        for leaf in jax.tree_util.tree_leaves(seqs.data):
            assert leaf.shape[:2] == (5, 4) and not np.asarray(leaf).any()

    # Exactly one valid chunk: every row is that chunk.
    ends = np.array([0, 0, 0, 1, 1, 0, 1, 0, 0, 0])  # ids 1..4 is the only complete length-4 run
    one = replay.add(buf, _items(np.arange(1, 11), ends, np.zeros(10)))
    seqs = _sample(one, jax.random.PRNGKey(0), batch_size=5, length=4)
    assert np.asarray(seqs.valid).all()
    np.testing.assert_array_equal(np.asarray(seqs.data.reward), np.tile([1, 2, 3, 4], (5, 1)))


def test_custom_episode_end_and_argument_errors():
    buf = replay.init(8, {"x": jnp.zeros(()), "done": jnp.zeros((), bool)})
    buf = replay.add(buf, {"x": jnp.arange(6.0), "done": jnp.arange(6) == 2})
    seqs = replay.sample_sequences(
        buf, jax.random.PRNGKey(0), 200, 3, episode_end=lambda d: d["done"]
    )
    firsts = set(np.asarray(seqs.data["x"][:, 0]).astype(int).tolist())
    assert firsts == {0, 3}  # [0,1,2] ends on the done item; [3,4,5] is the new episode
    with pytest.raises(TypeError, match="episode_end"):
        replay.sample_sequences(buf, jax.random.PRNGKey(0), 2, 3)  # no terminated/truncated
    with pytest.raises(ValueError, match="length"):
        replay.sample_sequences(buf, jax.random.PRNGKey(0), 2, 9, episode_end=lambda d: d["done"])
    with pytest.raises(ValueError, match="shape"):
        replay.sample_sequences(buf, jax.random.PRNGKey(0), 2, 3, episode_end=lambda d: d["x"][:4])
