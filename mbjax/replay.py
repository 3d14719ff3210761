"""Fixed-capacity replay buffers as pytrees.

The buffer's arrays never change shape, so code compiled against a buffer does not retrace as it
fills: `size` is a traced scalar and consumers mask or sample within `[0, size)`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct


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
    if not isinstance(capacity, int) or capacity <= 0:
        raise ValueError(f"replay capacity must be a positive int, got {capacity!r}")
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
