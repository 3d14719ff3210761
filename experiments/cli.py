"""Shared command-line plumbing: `--config.<field>=value` overrides and clean error exits."""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
from typing import Any, Callable, NamedTuple, NoReturn

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


# Exit status of a run stopped with Ctrl-C (128 + SIGINT), as shells report it.
INTERRUPTED_EXIT_CODE = 130


class Interrupted(Exception):
    """Ctrl-C during a run; the message says where the run stands and how to continue it."""


class StopRequest:
    """Ctrl-C during training, as a context manager around the run.

    The first Ctrl-C asks to stop once the current iteration is done and checkpointed (stopping
    inside a checkpoint write would cost that iteration and spill orbax's log): `requested` turns
    True and the run's progress callback raises `Interrupted` there. A second Ctrl-C stops at
    once (KeyboardInterrupt).
    """

    def __init__(self, notice: str):
        self.notice = notice
        self.requested = False
        self._previous: Any = None

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print(self.notice, file=sys.stderr, flush=True)

    def __enter__(self) -> StopRequest:
        self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        signal.signal(signal.SIGINT, self._previous)


# Set once this process joined a multi-process run (`init_distributed`).
_MULTI_PROCESS = [False]


def fail(message: str, code: int = 2, prefix: str = "error") -> NoReturn:
    """Prints a one-line message (no traceback) and exits with `code`.

    In a multi-process run the exit is immediate (os._exit): a normal exit would wait in
    jax.distributed's shutdown barrier for peers that wait in the next collective, so both would
    hang until a timeout; this way the peers see the process gone and stop too.
    """
    print(f"{prefix}: {message}", file=sys.stderr)
    if _MULTI_PROCESS[0]:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def build_config(algorithm: Any, env: str, preset: str, overrides: dict[str, str]) -> Any:
    """The preset config of `algorithm` (an `Algorithm` record) for `env` with the
    command-line overrides applied (selector fields such as `planner` first, see
    `mbjax.configs`)."""
    from mbjax import configs

    if "env" in overrides:
        # One source for the env: `--env` also names the run directory and config.json's "env".
        raise ValueError(f"--config.env={overrides['env']!r} is invalid; allowed: set the "
                         "environment with --env=<name>")
    config = algorithm.preset(env, preset)
    config = configs.apply_overrides(config, overrides)
    return dataclasses.replace(config, env=env)


def resolve(algo_name: str, env: str, preset: str, overrides: dict[str, str]) -> tuple[Any, Any]:
    """(Algorithm record, Config) for the `--algo/--env/--preset/--config.*` flags; one-line
    ValueErrors for an unknown algorithm, env, preset or override."""
    from mbjax import agents, envs

    algorithm = agents.get(algo_name)
    envs.check_name(env)
    return algorithm, build_config(algorithm, env, preset, overrides)


def prepare_run_dir(out: str, run_info: dict[str, Any], build: Callable[[], Any],
                    resume: bool, progress_dirs: tuple[str, ...] = (),
                    writer: bool = True) -> tuple[Any, bool, bool]:
    """Guards a run or sweep directory, builds the program, writes config.json.

    Without `resume`, `out` must be new or empty; with it, `out` must hold a run of the same
    kind and flags (`mbjax.runs.check_resume_dir`). `build()` (e.g. `algo.make_program`) runs
    before anything is written, so a failure to build the env leaves no files. A directory
    without progress (in `out` or `progress_dirs`: stopped before its first checkpoint) has
    nothing to continue and starts again. config.json is written here unless it exists or a
    resume restores it (after its checkpoint's settings are checked).
    In a multi-process sweep every process checks (they see the same files) and waits for the
    others before process 0 (`writer`) writes anything.
    Returns (program, resume from checkpoints?, config.json existed?).
    """
    from mbjax import runs

    has_config = runs.check_resume_dir(out, run_info) if resume else False
    if not resume:
        runs.check_new_run_dir(out)
    program = build()
    restore = resume and any(runs.has_progress(d) for d in (out, *progress_dirs))
    barrier("run directory checked")
    if not writer:
        return program, restore, has_config
    if resume and not restore:
        print(f"nothing to resume in {out}: starting from the beginning")
    if not has_config and not restore:
        runs.write_run_info(out, run_info)
    return program, restore, has_config


def barrier(name: str) -> None:
    """Waits for every process of a multi-process run (no-op in one process)."""
    import jax

    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


# A peer that died is noticed within a minute (JAX's defaults: 100 s heartbeat, 300 s shutdown).
_DISTRIBUTED_TIMEOUTS = {"heartbeat_timeout_seconds": 60, "shutdown_timeout_seconds": 60}


class Distributed(NamedTuple):
    """This process's place in a (possibly multi-process) run."""

    process_id: int = 0
    num_processes: int = 1

    @property
    def writer(self) -> bool:
        """Process 0 writes the run's files; the others only compute."""
        return self.process_id == 0


def define_distributed_flags() -> None:
    """--coordinator_address, --num_processes, --process_id and --distributed (a sweep across
    processes or hosts with jax.distributed)."""
    from absl import flags

    flags.DEFINE_string("coordinator_address", None,
                        "host:port of process 0 for a multi-process sweep (jax.distributed); "
                        "default $JAX_COORDINATOR_ADDRESS.")
    flags.DEFINE_integer("num_processes", None,
                         "Number of processes of a multi-process sweep "
                         "(default $JAX_NUM_PROCESSES).")
    flags.DEFINE_integer("process_id", None,
                         "This process's index in [0, num_processes) (default $JAX_PROCESS_ID).")
    flags.DEFINE_bool("distributed", False,
                      "Join a multi-process run whose settings jax.distributed detects itself "
                      "(SLURM, Open MPI, Cloud TPU).")


def _distributed_setting(flag_value: Any, variable: str, name: str, parse: Callable) -> Any:
    if flag_value is not None:
        return flag_value
    text = os.environ.get(variable)
    if text is None:
        return None
    try:
        return parse(text)
    except ValueError:
        from mbjax import validation

        raise validation.invalid(f"${variable}", text, f"{name}") from None


def init_distributed() -> Distributed:
    """Starts JAX's multi-controller runtime when the flags or $JAX_COORDINATOR_ADDRESS /
    $JAX_NUM_PROCESSES / $JAX_PROCESS_ID (or --distributed) ask for it; one process otherwise.
    Must run before any JAX computation. One-line ValueErrors for incomplete or bad settings."""
    import jax
    from absl import flags

    from mbjax import validation

    f = flags.FLAGS
    address = _distributed_setting(f.coordinator_address, "JAX_COORDINATOR_ADDRESS",
                                   "host:port", str)
    count = _distributed_setting(f.num_processes, "JAX_NUM_PROCESSES", "an integer >= 1", int)
    index = _distributed_setting(f.process_id, "JAX_PROCESS_ID", "an integer >= 0", int)
    given = {"--coordinator_address": address, "--num_processes": count, "--process_id": index}
    if all(v is None for v in given.values()):
        if f.distributed:
            jax.distributed.initialize(**_DISTRIBUTED_TIMEOUTS)
            _MULTI_PROCESS[0] = jax.process_count() > 1
            sys.excepthook = _exit_at_once
            return Distributed(jax.process_index(), jax.process_count())
        return Distributed()
    missing = [name for name, v in given.items() if v is None]
    if missing:
        raise ValueError(f"a multi-process sweep needs {', '.join(given)}; missing: "
                         f"{', '.join(missing)} (flags or $JAX_COORDINATOR_ADDRESS, "
                         "$JAX_NUM_PROCESSES, $JAX_PROCESS_ID)")
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise validation.invalid("--coordinator_address", address, "host:port, e.g. 10.0.0.1:1234")
    validation.check_int("--num_processes", count)
    validation.check_int("--process_id", index, lo=0, hi=count - 1)
    jax.distributed.initialize(coordinator_address=address, num_processes=count,
                               process_id=index, **_DISTRIBUTED_TIMEOUTS)
    _MULTI_PROCESS[0] = count > 1
    sys.excepthook = _exit_at_once
    return Distributed(index, count)


def _exit_at_once(*exc_info: Any) -> None:
    """sys.excepthook of a multi-process run: print the traceback of an unexpected error and
    exit at once (see `fail`), so peers do not wait for this process until a timeout."""
    import traceback

    traceback.print_exception(*exc_info)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(1)


def define_run_flags(output_help: str, resume_help: str) -> None:
    """The flags every training entry point shares: --algo, --env, --preset, --output_dir,
    --resume, --quiet (each entry point adds its seed flags)."""
    from absl import flags

    flags.DEFINE_string("algo", "pets", algo_help())
    flags.DEFINE_string("env", "cartpole_swingup", "Environment name (see mbjax.envs.names()).")
    flags.DEFINE_string("preset", "cpu", "Config preset: cpu, paper or test.")
    flags.DEFINE_string("output_dir", None, output_help)
    flags.DEFINE_bool("resume", False, resume_help)
    flags.DEFINE_bool("quiet", False, "No progress bar or per-iteration lines.")


def output_dir(flag_value: str | None, default: str) -> str:
    """The run directory: `--output_dir`, or `default` when the flag is not given; an empty or
    blank `--output_dir=` is an error rather than a silent fallback to the default."""
    if flag_value is None:
        return default
    if not flag_value.strip():
        from mbjax import validation

        raise validation.invalid("--output_dir", flag_value, "a directory path")
    return flag_value


def algo_help() -> str:
    """`--algo` help: the registered algorithm names (importing no learner)."""
    from mbjax import agents

    return f"Algorithm: one of {', '.join(agents.names())}."


def progress(algorithm: Any, total: int, desc: str, quiet: bool) -> Any:
    """A progress bar over `total` iterations, counted in the algorithm's `iteration_unit`."""
    from mbjax.logging import progress_bar

    return progress_bar(total, desc, disable=quiet, unit=algorithm.iteration_unit)


def run_guarded(main: Callable[[], None]) -> None:
    """Runs `main`, turning configuration and file errors into one line and exit code 2, and
    Ctrl-C into one line and exit code 130."""
    from mbjax.checkpoint import CheckpointError

    try:
        main()
    except (ValueError, CheckpointError, FloatingPointError, OSError) as e:
        fail(str(e))
    except Interrupted as e:
        fail(str(e), INTERRUPTED_EXIT_CODE, prefix="interrupted")
    except KeyboardInterrupt:
        fail("stopped by Ctrl-C", INTERRUPTED_EXIT_CODE, prefix="interrupted")


def parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing with a one-line error and exit code 2 (absl prints usage, exits 1)."""
    from absl import flags

    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        fail(str(e))


def launch(run: Callable[[dict[str, str]], None]) -> None:
    """The `__main__` of every entry point: `run(config_overrides)` under absl, runtime set up,
    configuration errors reported in one line."""
    from absl import app

    sys.argv, overrides = split_config_overrides(sys.argv)

    def main(argv: list[str]) -> None:
        if len(argv) > 1:
            fail(f"unexpected arguments: {' '.join(argv[1:])}")
        run_guarded(lambda: (setup_runtime(), run(overrides)))

    try:
        app.run(main, flags_parser=parse_flags)
    except KeyboardInterrupt:  # Ctrl-C while absl or JAX start up
        fail("stopped by Ctrl-C", INTERRUPTED_EXIT_CODE, prefix="interrupted")


def setup_runtime() -> None:
    """Quiet logs (orbax/JAX INFO lines, Brax's maintenance warning) and the compile cache."""
    import warnings

    from absl import logging

    os.environ.setdefault("MUJOCO_GL", "disable")
    logging.set_verbosity(logging.WARNING)
    warnings.filterwarnings("ignore", message="Brax System, piplines and environments")
    from mbjax.compile_cache import enable_compilation_cache

    enable_compilation_cache()
