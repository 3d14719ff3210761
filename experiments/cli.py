"""Shared command-line plumbing: `--config.<field>=value` overrides and clean error exits."""

from __future__ import annotations

import dataclasses
import os
import sys
from typing import Any, Callable

CONFIG_PREFIX = "--config."


def split_config_overrides(argv: list[str]) -> tuple[list[str], dict[str, str]]:
    """Removes `--config.a.b=value` items from argv (absl cannot declare them) and returns them."""
    rest, overrides = [], {}
    for arg in argv:
        if arg.startswith(CONFIG_PREFIX):
            body = arg[len(CONFIG_PREFIX):]
            if "=" not in body:
                fail(f"{arg!r}: config overrides take the form --config.<field>=<value>")
            path, value = body.split("=", 1)
            overrides[path] = value
        else:
            rest.append(arg)
    return rest, overrides


def fail(message: str, code: int = 2) -> None:
    """Prints a one-line error (no traceback) and exits."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


def build_config(algorithm: Any, env: str, preset: str, overrides: dict[str, str]) -> Any:
    """The preset config of `algorithm` (an `Algorithm` record) for `env` with the
    command-line overrides applied (selector fields such as `planner` first, see
    `mbjax.configs`)."""
    from mbjax import configs

    config = algorithm.preset(env, preset)
    config = configs.apply_overrides(config, overrides)
    return dataclasses.replace(config, env=env)


def algo_help() -> str:
    """`--algo` help: the registered algorithm names (importing no learner)."""
    from mbjax import agents

    return f"Algorithm: one of {', '.join(agents.names())}."


def progress(algorithm: Any, total: int, desc: str, quiet: bool) -> Any:
    """A progress bar over `total` iterations, counted in the algorithm's `iteration_unit`."""
    from mbjax.logging import progress_bar

    return progress_bar(total, desc, disable=quiet, unit=algorithm.iteration_unit)


def run_guarded(main: Callable[[], None]) -> None:
    """Runs `main`, turning configuration errors into a clear message and exit code 2."""
    from mbjax.checkpoint import CheckpointError

    try:
        main()
    except (ValueError, CheckpointError, FloatingPointError) as e:
        fail(str(e))


def launch(run: Callable[[dict[str, str]], None]) -> None:
    """The `__main__` of every entry point: `run(config_overrides)` under absl, runtime set up,
    configuration errors reported in one line."""
    from absl import app

    sys.argv, overrides = split_config_overrides(sys.argv)

    def main(argv: list[str]) -> None:
        if len(argv) > 1:
            fail(f"unexpected arguments: {' '.join(argv[1:])}")
        setup_runtime()
        run_guarded(lambda: run(overrides))

    app.run(main)


def setup_runtime() -> None:
    """Quiet logs (orbax/JAX INFO lines, Brax's maintenance warning) and the compile cache."""
    import warnings

    from absl import logging

    os.environ.setdefault("MUJOCO_GL", "disable")
    logging.set_verbosity(logging.WARNING)
    warnings.filterwarnings("ignore", message="Brax System, piplines and environments")
    from mbjax.compile_cache import enable_compilation_cache

    enable_compilation_cache()
