"""Learners that compose models, planners and policies (PETS, MBPO, SAC, ...).

Every algorithm is described by one explicit record, `mbjax.agents.algorithm.Algorithm`
(config class, presets, `make_program`, `make_policy`, iteration unit), exported as `ALGORITHM`
by its package. `get(name)` returns it; `mbjax.agents.driver.train(algorithm, env, config, ...)`
runs any of them on the host with progress, checkpoints and exact resume.

    from mbjax import agents
    from mbjax.agents import driver
    algo = agents.get("pets")
    config = algo.preset("point_mass", "test")
    make_policy, final_state, records = driver.train(algo, "point_mass", config, seed=0)
    init_carry, policy = make_policy(final_state)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mbjax.agents.algorithm import Algorithm

# name -> the package that exports its `ALGORITHM` record. Imported on first `get(name)` only,
# so `import mbjax.agents` (e.g. for `--help`) does not load JAX or any learner.
ALGORITHMS: dict[str, str] = {
    "pets": "mbjax.agents.pets",
    "mbpo": "mbjax.agents.mbpo",
    "sac": "mbjax.agents.sac",
    "dyna_q": "mbjax.agents.dyna_q",
    "pilco": "mbjax.agents.pilco",
    "dreamer": "mbjax.agents.dreamer",
    "mcts": "mbjax.agents.mcts",
    "gps": "mbjax.agents.gps",
    "planet": "mbjax.agents.planet",
    "bptt": "mbjax.agents.bptt",
    "maac": "mbjax.agents.maac",
    "distill": "mbjax.agents.distill",
    "mbppo": "mbjax.agents.mbppo",
    "e2c": "mbjax.agents.e2c",
}


def names() -> tuple[str, ...]:
    """The registered algorithm names, in registry order."""
    return tuple(ALGORITHMS)


def get(name: str) -> Algorithm:
    """The `Algorithm` record of `name` (its package is imported on first use).

    Raises ValueError naming the allowed names for an unknown name.
    """
    if name not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {name!r}; allowed: {', '.join(ALGORITHMS)}")
    module = importlib.import_module(ALGORITHMS[name])
    record = getattr(module, "ALGORITHM", None)
    if record is None:
        raise ValueError(
            f"algorithm {name!r} is registered but {ALGORITHMS[name]} exports no ALGORITHM record"
        )
    return record
