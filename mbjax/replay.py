"""Fixed-capacity replay buffers as pytrees.

The buffer's arrays never change shape, so code compiled against a buffer does not retrace as it
fills: `size` is a traced scalar and consumers mask or sample within `[0, size)`.

Items are stored in time order as a ring: the logically oldest item sits in slot
`(insert_pos - size) % capacity` and the newest in slot `(insert_pos - 1) % capacity`.
`sample_sequences` draws contiguous chunks from that logical order for sequence models; it assumes
ONE stream of consecutive steps (one env, or one buffer per env under `jax.vmap`). A buffer filled
with `[num_envs]` batches per step interleaves envs, so its neighbouring items are not consecutive
steps of one episode.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, NamedTuple, Optional

import jax
import jax.numpy as jnp
from flax import struct

from mbjax import validation


@struct.dataclass
class ReplayBuffer:
    """data: pytree whose leaves are [capacity, ...]; insert_pos/size: int32 scalars."""

    data: Any
    insert_pos: jax.Array
    size: jax.Array

    @property
    def capacity(self) -> int:
        return jax.tree_util.tree_leaves(self.data)[0].shape[0]


def init(capacity: int, example: Any) -> ReplayBuffer:
    """An empty buffer for items shaped like `example` (one item, no leading axis)."""
    validation.check_int("replay capacity", capacity)
    data = jax.tree_util.tree_map(
        lambda x: jnp.zeros((capacity,) + jnp.shape(x), jnp.asarray(x).dtype), example
    )
    zero = jnp.zeros((), jnp.int32)
    return ReplayBuffer(data=data, insert_pos=zero, size=zero)


def add(buffer: ReplayBuffer, batch: Any) -> ReplayBuffer:
    """Inserts `batch` (leaves [n, ...]) as a ring buffer; the oldest items are overwritten.

    `n` must not exceed the capacity (checked at trace time).
    """
    n = jax.tree_util.tree_leaves(batch)[0].shape[0]
    cap = buffer.capacity
    if n > cap:
        raise ValueError(f"cannot add {n} items to a replay buffer of capacity {cap}")
    idx = (buffer.insert_pos + jnp.arange(n)) % cap
    data = jax.tree_util.tree_map(lambda d, b: d.at[idx].set(b.astype(d.dtype)), buffer.data, batch)
    return ReplayBuffer(
        data=data,
        insert_pos=(buffer.insert_pos + n) % cap,
        size=jnp.minimum(buffer.size + n, cap),
    )


def sample(buffer: ReplayBuffer, key: jax.Array, batch_size: int) -> Any:
    """Uniform sample with replacement from the filled part: leaves [batch_size, ...].

    Sampling an empty buffer returns item 0 (zeros); callers guard with `buffer.size`.
    """
    idx = jax.random.randint(key, (batch_size,), 0, jnp.maximum(buffer.size, 1))
    return jax.tree_util.tree_map(lambda d: d[idx], buffer.data)


def valid_mask(buffer: ReplayBuffer) -> jax.Array:
    """[capacity] float mask, 1.0 for filled slots."""
    return (jnp.arange(buffer.capacity) < buffer.size).astype(jnp.float32)


def add_masked(buffer: ReplayBuffer, batch: Any, mask: jax.Array) -> ReplayBuffer:
    """Inserts only the items of `batch` (leaves [n, ...]) where `mask` [n] is nonzero.

    Shapes stay static: valid items are moved to the front (order kept) and written to the n
    slots from the insert position; only the valid count advances the buffer. Slots past the
    valid items keep their old content, so invalid items (e.g. NaN states of an env stepped past
    its termination) never enter the buffer and nothing live is overwritten.
    """
    mask = mask.astype(bool)
    order = jnp.argsort(~mask, stable=True)  # valid first, original order kept
    n = mask.shape[0]
    cap = buffer.capacity
    if n > cap:
        raise ValueError(f"cannot add {n} items to a replay buffer of capacity {cap}")
    count = jnp.sum(mask, dtype=jnp.int32)
    idx = (buffer.insert_pos + jnp.arange(n)) % cap
    keep_old = jnp.arange(n) >= count
    data = jax.tree_util.tree_map(
        lambda d, b: d.at[idx].set(
            jnp.where(
                keep_old.reshape((n,) + (1,) * (d.ndim - 1)), d[idx], b[order].astype(d.dtype)
            )
        ),
        buffer.data,
        batch,
    )
    return ReplayBuffer(
        data=data,
        insert_pos=(buffer.insert_pos + count) % cap,
        size=jnp.minimum(buffer.size + count, cap),
    )


class Sequences(NamedTuple):
    """A batch of contiguous chunks from `sample_sequences`.

    data: the buffer's pytree with leaves [batch_size, length, ...], time order along axis 1.
    valid: [batch_size] bool. False only when the buffer holds no valid chunk at all (then every
        row is False and `data` is all zeros); use it as a loss weight or gate the update on
        `valid.any()`.
    """

    data: Any
    valid: jax.Array


def transition_episode_end(data: Any) -> jax.Array:
    """Default `episode_end`: `(terminated > 0) | (truncated > 0)`, leaves [capacity] -> bool.

    Works for `mbjax.types.Transition` (attributes) and for mappings with those two keys. A
    truncated step ends its episode like a terminated one: the next item starts a new episode.
    """
    try:
        if isinstance(data, Mapping):
            terminated, truncated = data["terminated"], data["truncated"]
        else:
            terminated, truncated = data.terminated, data.truncated
    except (AttributeError, KeyError) as err:
        raise TypeError(
            "sample_sequences: the items have no `terminated`/`truncated` fields; pass "
            "episode_end=lambda data: <[capacity] bool, True where an episode ends>"
        ) from err
    return (terminated > 0) | (truncated > 0)


def _oldest_slot(buffer: ReplayBuffer) -> jax.Array:
    """Physical slot of the logically oldest item (0 until the ring first wraps)."""
    return (buffer.insert_pos - buffer.size) % buffer.capacity


def sequence_starts(
    buffer: ReplayBuffer,
    length: int,
    episode_end: Optional[Callable[[Any], jax.Array]] = None,
) -> jax.Array:
    """[capacity] bool in LOGICAL order: entry j is True iff the `length` items starting at the
    j-th oldest item form a valid chunk.

    Valid means: all `length` items are filled (j + length <= size, so the chunk never runs past
    the newest item into the oldest one: no wrap across the write head) and none of its first
    `length - 1` items ends an episode (the last item may end one). O(capacity): one gather and
    one cumulative sum, whatever the length.
    """
    cap = buffer.capacity
    validation.check_int("sample_sequences: length", length, 1, cap)
    ends = (episode_end or transition_episode_end)(buffer.data)
    if ends.shape != (cap,):
        raise ValueError(f"episode_end must return shape ({cap},), got {ends.shape}")
    j = jnp.arange(cap)
    # Rotate into logical order so "contiguous in time" is "contiguous in index" (no modulo
    # below); unfilled slots land at logical j >= size and are excluded by `fits`.
    ends = ends[(_oldest_slot(buffer) + j) % cap].astype(jnp.int32)
    # before[k] = number of episode ends among logical items [0, k); k runs over [0, cap].
    before = jnp.concatenate([jnp.zeros((1,), jnp.int32), jnp.cumsum(ends)])
    # Ends among items j .. j+length-2 (every item but the chunk's last). The clip only keeps the
    # index in range for starts that `fits` rejects anyway.
    interior_ends = before[jnp.minimum(j + length - 1, cap)] - before[j]
    fits = j + length <= buffer.size
    return fits & (interior_ends == 0)


def sample_sequences(
    buffer: ReplayBuffer,
    key: jax.Array,
    batch_size: int,
    length: int,
    episode_end: Optional[Callable[[Any], jax.Array]] = None,
) -> Sequences:
    """Uniform sample (with replacement) of `batch_size` chunks of `length` consecutive items.

    Every valid start (see `sequence_starts`) is equally likely. A chunk never crosses an episode
    end (an item that ends an episode may only be a chunk's LAST item) and never wraps from the
    newest item back to the oldest. `episode_end(data) -> [capacity] bool` marks the items that
    end an episode; the default, `transition_episode_end`, reads `terminated`/`truncated` of a
    `Transition`-like item.

    Returns `Sequences(data, valid)`: data leaves [batch_size, length, ...] in time order, valid
    [batch_size] bool. When no valid chunk exists (buffer shorter than `length`, or every stored
    episode is shorter than `length`), valid is all False and data is all zeros: never a chunk
    that crosses a boundary.

    jit with `batch_size`, `length` and `episode_end` static; `size`/`insert_pos` are traced, so
    nothing retraces as the buffer fills. Work is O(capacity + batch_size * (length + log
    capacity)).
    """
    cap = buffer.capacity
    starts = sequence_starts(buffer, length, episode_end)
    # Exact integer inverse-CDF: draw the r-th valid start uniformly from [0, count) and find it
    # by binary search in the running count (no float probabilities to round, no rejection loop).
    running = jnp.cumsum(starts.astype(jnp.int32))
    count = running[-1]
    r = jax.random.randint(key, (batch_size,), 0, jnp.maximum(count, 1))
    start = jnp.searchsorted(running, r, side="right")  # first j with running[j] > r
    start = jnp.minimum(start, cap - 1)  # count == 0 gives cap: keep the gather in range
    idx = (_oldest_slot(buffer) + start[:, None] + jnp.arange(length)) % cap  # [batch, length]
    valid = jnp.broadcast_to(count > 0, (batch_size,))

    def take(leaf: jax.Array) -> jax.Array:
        chunk = leaf[idx]
        # Zeros rather than a boundary-crossing chunk when nothing is valid.
        return jnp.where(valid.reshape((batch_size,) + (1,) * (chunk.ndim - 1)), chunk, 0)

    return Sequences(data=jax.tree_util.tree_map(take, buffer.data), valid=valid)
