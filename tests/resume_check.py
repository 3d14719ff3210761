"""One check shared by the learners' tests: a run interrupted after some iterations and resumed
from its checkpoints ends with exactly the records of an uninterrupted run."""

from __future__ import annotations

from typing import Any, Callable

import pytest


class Interrupt(Exception):
    """Raised from a progress callback to stop a run the way a kill would (after a save)."""


def strip_wall_time(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "wall_time_s"} for r in records]


def assert_resume_matches(train: Callable[..., Any], full: list[dict], checkpoint_dir: str,
                          stop_after: int, **kwargs: Any) -> None:
    """train(**kwargs, checkpoint_dir, progress_fn, resume, on_resume) -> (_, _, records)."""

    def stop(record: dict) -> None:
        if len(seen) == stop_after - 1:
            raise Interrupt
        seen.append(record)

    seen: list[dict] = []
    with pytest.raises(Interrupt):
        train(checkpoint_dir=checkpoint_dir, progress_fn=stop, **kwargs)
    restored: list[dict] = []
    _, _, resumed = train(checkpoint_dir=checkpoint_dir, resume=True, on_resume=restored.extend,
                          **kwargs)
    assert len(restored) == stop_after
    assert strip_wall_time(resumed) == strip_wall_time(full)
