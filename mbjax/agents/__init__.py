"""Learners that compose models, planners and policies (PETS, MBPO, SAC, ...).

Every algorithm module `mbjax.agents.<algo>` exposes the same surface:
`Config`, `preset(env, name)`, `make_train(config) -> train(key)`, and the host driver
`train(env, config, *, seed, progress_fn, checkpoint_dir, resume, on_resume)
-> (make_policy, params, records)`.
"""

from __future__ import annotations

import importlib
from types import ModuleType

ALGORITHMS = ("pets", "mbpo")


def get(name: str) -> ModuleType:
    """The agent module for algorithm `name` (imported lazily)."""
    if name not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {name!r}; allowed: {', '.join(ALGORITHMS)}")
    return importlib.import_module(f"mbjax.agents.{name}")
