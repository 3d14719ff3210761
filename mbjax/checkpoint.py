"""All orbax calls live here: saving and restoring a run's full state.

A checkpoint holds one pytree (`state`: model, optimizer, normalizer, buffer, counters, key) and a
small JSON document (`meta`: e.g. the records written so far and the run's description). Orbax
writes each step into a temporary directory and renames it when complete, so a run killed
mid-save leaves the previous checkpoint intact.

Never silent: `save` raises if orbax declines a step (it refuses steps at or below the newest one,
e.g. another run's checkpoints in the same directory), and `restore_newest_valid` skips an
unreadable newest step for the newest readable one, saying which (`on_notice`), but never skips a
checkpoint that is readable and does not match (that raises).
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any, Callable

import jax
import numpy as np

Notice = Callable[[str], None]
# Called with (step, meta) before a step's state is restored; raises CheckpointError to refuse.
MetaCheck = Callable[[int, dict[str, Any]], None]


class CheckpointError(RuntimeError):
    """A checkpoint is missing, incomplete or does not match the expected state."""


class CorruptCheckpointError(CheckpointError):
    """A checkpoint step that cannot be read (missing or damaged files)."""


def _ocp():
    import orbax.checkpoint as ocp  # lazy: orbax is slow to import

    _quiet_closed_loop_noise()
    return ocp


def _quiet_closed_loop_noise() -> None:
    """After a failed restore, orbax's pending reads finish on a closed asyncio loop and Python
    prints their "Event loop is closed" RuntimeError as a traceback (an unraisable exception),
    although the failure was already raised as a CheckpointError. Drop exactly those; every
    other unraisable exception goes to the previous hook."""
    previous = sys.unraisablehook
    if getattr(previous, "_mbjax_filter", False):
        return

    def hook(unraisable: Any) -> None:
        value = unraisable.exc_value
        if isinstance(value, RuntimeError) and str(value) == "Event loop is closed":
            return
        previous(unraisable)

    hook._mbjax_filter = True  # type: ignore[attr-defined]
    sys.unraisablehook = hook


def _one_line(error: Exception, limit: int = 160) -> str:
    """`Type: first line of the message`, shortened: orbax/tensorstore messages span lines."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return f"{type(error).__name__}: {text}"


def _default_notice(message: str) -> None:
    logging.getLogger("mbjax.checkpoint").warning(message)


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


def _without_empty(tree: Any) -> Any:
    """`tree` with every zero-size leaf replaced by None: orbax refuses to save zero-size arrays
    (MJX env states hold some, e.g. `pipeline_state.act` of a model without activations), and
    they hold no data, so `_with_empty` recreates them from the template on restore."""
    return jax.tree_util.tree_map(lambda x: None if np.size(x) == 0 else x, tree)


def _with_empty(restored: Any, like: Any) -> Any:
    """`restored` (saved by `_without_empty`) with `like`'s zero-size leaves put back."""
    return jax.tree_util.tree_map(
        lambda x, r: np.zeros(np.shape(x), np.asarray(x).dtype) if np.size(x) == 0 else r,
        like, restored)


def check_run_meta(saved: Any, given: dict[str, Any] | None, step: int, directory: str) -> None:
    """Refuses a checkpoint made by a different run: `saved` (the run description stored with
    it) must equal `given` (None: nothing to compare). The error names the differing fields as
    dotted paths with both values."""
    import json

    from mbjax.runs import describe_differences

    if given is None:
        return
    given = json.loads(json.dumps(given))  # tuples -> lists, as stored
    if saved is None:
        raise CheckpointError(
            f"checkpoint step {step} in {directory!r} carries no run description to check "
            "against the given settings; resume it without them or start a new run"
        )
    if saved != given:
        raise CheckpointError(
            f"checkpoint step {step} in {directory!r} was made by a different run: "
            f"{describe_differences(saved, given)} (saved -> given); resume with the run's own "
            "settings or choose another directory"
        )


def _this_process_only(ocp: Any) -> Any:
    """Orbax options for a checkpointer used by this process alone. In a multi-process run
    (jax.distributed) orbax otherwise synchronizes every process at each call; mbjax's
    checkpoints hold host arrays, which process 0 saves and any process may read, so no
    process waits for another."""
    index = jax.process_index()
    return ocp.options.MultiprocessingOptions(primary_host=index, active_processes={index})


class Checkpointer:
    """Saves/restores `(state, meta)` pairs under `directory`, keeping the newest `max_to_keep`."""

    def __init__(self, directory: str, max_to_keep: int = 2):
        ocp = _ocp()
        self.directory = os.path.abspath(directory)
        # Created here: orbax's create=True does not combine with single-process options.
        os.makedirs(self.directory, exist_ok=True)
        options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=False,
                                               multiprocessing_options=_this_process_only(ocp))
        self._manager = ocp.CheckpointManager(self.directory, options=options)

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def all_steps(self) -> list[int]:
        return sorted(self._manager.all_steps())

    def save(self, step: int, state: Any, meta: dict[str, Any]) -> None:
        """Saves synchronously (returns once the checkpoint is complete on disk).

        Raises CheckpointError if the step cannot be saved: orbax silently declines a step at or
        below the newest one on disk, which would leave a run without checkpoints.
        """
        ocp = _ocp()
        latest = self.latest_step()
        if latest is not None and step <= latest:
            raise CheckpointError(
                f"cannot save checkpoint step {step} in {self.directory!r}: it already holds "
                f"step {latest} (another run's checkpoints?); resume that run or choose another "
                "directory"
            )
        state = jax.device_get(state)
        saved = self._manager.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(_without_empty(state)),
                meta=ocp.args.JsonSave(meta),
            ),
        )
        self._manager.wait_until_finished()
        if not saved:
            raise CheckpointError(f"orbax declined to save checkpoint step {step} in "
                                  f"{self.directory!r}")

    def read_meta(self, step: int) -> dict[str, Any]:
        """The JSON meta of one step; CorruptCheckpointError if it cannot be read."""
        ocp = _ocp()
        try:
            restored = self._manager.restore(
                step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())
            )
            return dict(restored["meta"])
        except Exception as e:  # orbax raises many types; name the step and the cause
            raise CorruptCheckpointError(
                f"checkpoint step {step} in {self.directory!r} is corrupt ({_one_line(e)})"
            ) from e

    def restore(self, like: Any, step: int | None = None) -> tuple[Any, dict[str, Any]]:
        """Restores the state shaped like `like` (a pytree of arrays) and its meta.

        Raises CheckpointError if there is no checkpoint or it does not match `like`
        (CorruptCheckpointError if its files cannot be read).
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
                    state=ocp.args.StandardRestore(_without_empty(abstract)),
                    meta=ocp.args.JsonRestore(),
                ),
            )
            state = _with_empty(restored["state"], like)
        except Exception as e:  # orbax raises many types; name the step and the cause
            raise CorruptCheckpointError(
                f"checkpoint step {step} in {self.directory!r} is corrupt or does not match the "
                f"current config ({_one_line(e)})"
            ) from e
        _check_matches(state, abstract, step, self.directory)
        return state, dict(restored["meta"])

    def restore_newest_valid(
        self, like: Any, check_meta: MetaCheck | None = None, on_notice: Notice | None = None
    ) -> tuple[int, Any, dict[str, Any]]:
        """Restores the newest readable step: `(step, state, meta)`.

        Unreadable newer steps are skipped; once an older step restores they are moved aside
        (`<step>.corrupt`, kept for inspection, so new saves can reuse their numbers) and
        `on_notice` (default: a logging warning) gets one line naming the skipped and the used
        step. `check_meta(step, meta)` runs before each state restore; its CheckpointError, and
        a readable state that does not match `like`, are raised, never skipped.
        Raises CheckpointError "no checkpoint to resume" if no step is readable.
        """
        skipped: list[tuple[int, CorruptCheckpointError]] = []
        for step in reversed(self.all_steps()):
            try:
                meta = self.read_meta(step)
                if check_meta is not None:
                    check_meta(step, meta)
                state, meta = self.restore(like, step)
            except CorruptCheckpointError as e:
                skipped.append((step, e))
                continue
            if skipped:
                self._set_aside(skipped, step, on_notice or _default_notice)
            return step, state, meta
        if skipped:
            raise CheckpointError(f"no checkpoint to resume in {self.directory!r}: every step is "
                                  f"unreadable (newest: {skipped[0][1]})")
        raise CheckpointError(f"no checkpoint to resume in {self.directory!r}")

    def _set_aside(self, skipped: list[tuple[int, CheckpointError]], used: int,
                   notice: Notice) -> None:
        """Renames unreadable steps to `<step>.corrupt` (orbax ignores them) and says so."""
        for step, _ in skipped:
            src = os.path.join(self.directory, str(step))
            dst, n = src + ".corrupt", 1
            while os.path.exists(dst):
                dst, n = f"{src}.corrupt{n}", n + 1
            os.rename(src, dst)
        self._manager.reload()
        names = ", ".join(str(s) for s, _ in skipped)
        cause = skipped[0][1].__cause__ or skipped[0][1]
        notice(f"checkpoint step {names} in {self.directory!r} is unreadable ({_one_line(cause)})"
               f"; resuming from step {used} (kept as {skipped[0][0]}.corrupt for inspection)")

    def close(self) -> None:
        self._manager.close()
