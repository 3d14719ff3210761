"""The one host driver of every algorithm: `train(algorithm, env, config, ...)` returns
`(make_policy, final_state, records)` in Brax's style.

    from mbjax import agents
    from mbjax.agents import driver
    make_policy, final_state, records = driver.train(agents.get("mbpo"), "point_mass", config)
    init_carry, policy = make_policy(final_state)

It runs the algorithm's `Program` one compiled iteration at a time (`program.run_host`): progress
after each iteration, a checkpoint of the full state after each, exact resume.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

from mbjax import agents
from mbjax.agents.algorithm import Algorithm, PolicyFactory
from mbjax.agents.program import Program, run_host

Record = dict[str, Any]


def train(
    algorithm: Algorithm | str,
    env: str,
    config: Any = None,
    *,
    seed: int = 0,
    progress_fn: Callable[[Record], None] | None = None,
    checkpoint_dir: str | None = None,
    resume: bool = False,
    on_resume: Callable[[list[Record]], None] | None = None,
    program: Program | None = None,
    meta: dict[str, Any] | None = None,
) -> tuple[Callable[..., PolicyFactory], Any, list[Record]]:
    """Runs `algorithm` (a record or its registry name) on registry env `env`.

    config: the algorithm's Config (None: its defaults); `env` overrides `config.env`.
    progress_fn(record) is called after each iteration (an episode or an epoch, see
    `algorithm.iteration_unit`) with its record (env_steps, episode_return, best_return,
    wall_time_s and the algorithm's own metrics). With `checkpoint_dir` the full state and the
    records so far are saved after every iteration; `resume=True` continues from the newest
    checkpoint there (calling on_resume(records) with the restored records first) and ends with
    exactly the records of an uninterrupted run. program: `algorithm.make_program(config)` when
    the caller built it already (e.g. to size a progress bar); it must match `config`.
    meta: a JSON-able description of the run (the CLI's {"algo", "env", "seed", "config"}),
    saved in every checkpoint; resuming with a different `meta` raises CheckpointError naming
    the differing fields.

    Returns (make_policy, final_state, records): make_policy(final_state, **kw) ->
    (init_carry, policy) is `algorithm.make_policy` bound to the config.
    Raises FloatingPointError if training met NaN/Inf.
    """
    if isinstance(algorithm, str):
        algorithm = agents.get(algorithm)
    if config is None:
        config = algorithm.config_class()
    config = dataclasses.replace(config, env=env)
    if program is None:
        program = algorithm.make_program(config)
    state, records = run_host(
        program, seed, progress_fn=progress_fn, checkpoint_dir=checkpoint_dir, resume=resume,
        on_resume=on_resume, meta=meta,
    )
    return functools.partial(algorithm.make_policy, config), state, records


def bind(algorithm: Algorithm) -> Callable[..., tuple[Callable[..., PolicyFactory], Any, list]]:
    """`train` for one algorithm: `bind(pets.ALGORITHM)(env, config, seed=0, ...)`; what
    `pets.train`, `mbpo.train`, ... are."""

    def train_algorithm(env: str, config: Any = None, **kwargs: Any):
        return train(algorithm, env, config, **kwargs)

    train_algorithm.__name__ = train_algorithm.__qualname__ = "train"
    train_algorithm.__doc__ = (
        f"Runs {algorithm.name} on the host: `mbjax.agents.driver.train` with its record.\n\n"
        f"Returns (make_policy, final_state, records), one record per {algorithm.iteration_unit}."
    )
    return train_algorithm
