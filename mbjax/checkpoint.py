"""All orbax calls live here: saving and restoring a run's full state.

A checkpoint holds one pytree (`state`: model, optimizer, normalizer, buffer, counters, key) and a
small JSON document (`meta`: e.g. the episode counter and the metrics written so far). Orbax writes
each step into a temporary directory and renames it when complete, so a run killed mid-save leaves
the previous checkpoint intact.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np


class CheckpointError(RuntimeError):
    """A checkpoint is missing, incomplete or does not match the expected state."""


def _ocp():
    import orbax.checkpoint as ocp  # lazy: orbax is slow to import

    return ocp


def _check_matches(restored: Any, abstract: Any, step: int, directory: str) -> None:
    """Orbax restores on-disk shapes silently; a config change must fail loudly instead."""
    got = jax.tree_util.tree_leaves_with_path(restored)
    want = jax.tree_util.tree_leaves_with_path(abstract)
    for (path, value), (_, spec) in zip(got, want, strict=True):
        if np.shape(value) != spec.shape or np.asarray(value).dtype != spec.dtype:
            raise CheckpointError(
                f"checkpoint step {step} in {directory!r} does not match the current config at "
                f"{jax.tree_util.keystr(path)}: saved {np.asarray(value).dtype}"
                f"{list(np.shape(value))}, expected {spec.dtype}{list(spec.shape)}"
            )


class Checkpointer:
    """Saves/restores `(state, meta)` pairs under `directory`, keeping the newest `max_to_keep`."""

    def __init__(self, directory: str, max_to_keep: int = 2):
        ocp = _ocp()
        self.directory = os.path.abspath(directory)
        options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
        self._manager = ocp.CheckpointManager(self.directory, options=options)

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def save(self, step: int, state: Any, meta: dict[str, Any]) -> None:
        """Saves synchronously (returns once the checkpoint is complete on disk)."""
        ocp = _ocp()
        state = jax.device_get(state)
        self._manager.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)
            ),
        )
        self._manager.wait_until_finished()

    def restore(self, like: Any, step: int | None = None) -> tuple[Any, dict[str, Any]]:
        """Restores the state shaped like `like` (a pytree of arrays) and its meta.

        Raises CheckpointError if there is no checkpoint or it does not match `like`.
        """
        ocp = _ocp()
        step = self.latest_step() if step is None else step
        if step is None:
            raise CheckpointError(f"no checkpoint found in {self.directory!r}")
        abstract = jax.tree_util.tree_map(
            lambda x: jax.ShapeDtypeStruct(np.shape(x), np.asarray(x).dtype), like
        )
        try:
            restored = self._manager.restore(
                step,
                args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()
                ),
            )
        except Exception as e:  # orbax raises many types; name the file and the cause
            raise CheckpointError(
                f"checkpoint step {step} in {self.directory!r} is corrupt or does not match the "
                f"current config ({type(e).__name__}: {e})"
            ) from e
        _check_matches(restored["state"], abstract, step, self.directory)
        return restored["state"], dict(restored["meta"])

    def close(self) -> None:
        self._manager.close()
