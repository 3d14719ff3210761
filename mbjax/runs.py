"""Run directories: where a training run lives on disk, the guards around them, and loading one.

A run directory (what `python -m experiments.train` writes) holds `config.json`
(`{"algo", "env", "seed", "config"}`, written atomically once the program has built),
`metrics.jsonl`, TensorBoard event files, `curve.png` and `checkpoints/` (the full state after
every iteration, with the records so far). A sweep directory's `config.json` lists `seeds`
instead of `seed`.

    policy, info = mbjax.load_policy("runs/pets_point_mass_s0")
    carry = policy.init_carry(key)
    carry, action, extras = policy.act(carry, obs, key)        # one step at a time
    returns = acting.policy_return(env, *policy, key, num_steps)  # or a whole episode

The guards (`check_new_run_dir`, `check_resume_dir`, `check_seed`, `check_seed_range`) raise
ValueError with one line naming the value and what is allowed, which the CLIs print as is. This
module imports nothing heavy at import time (the CLIs call the guards before JAX loads).
"""

from __future__ import annotations

import inspect
import json
import os
from typing import Any, Callable, NamedTuple

from mbjax import validation

CONFIG_FILE = "config.json"
CHECKPOINT_DIR = "checkpoints"
METRICS_FILE = "metrics.jsonl"
# jax.random.PRNGKey takes a uint32 seed: larger seeds alias (2**32 + s == s) or overflow.
SEED_MAX = 2**32 - 1


# ------------------------------------------------------------------------------------ seeds


def check_seed(value: Any, name: str = "--seed") -> None:
    """A seed is an int in [0, 2**32 - 1] (what `jax.random.PRNGKey` distinguishes)."""
    validation.check_int(name, value, 0, SEED_MAX)


def check_seed_range(start: Any, count: Any, start_name: str = "--seed_start",
                     count_name: str = "--seeds") -> list[int]:
    """The seeds start, start + 1, ..., start + count - 1, all valid seeds; returns them."""
    check_seed(start, start_name)
    validation.check_int(count_name, count, 1, SEED_MAX - start + 1)
    return list(range(start, start + count))


# --------------------------------------------------------------------------- directory guards


def _file_above(path: str) -> str | None:
    """The first existing non-directory among `path`'s ancestors (a path cannot lie under it)."""
    parent = os.path.dirname(os.path.abspath(path))
    while True:
        if os.path.exists(parent) and not os.path.isdir(parent):
            return parent
        if os.path.dirname(parent) == parent:
            return None
        parent = os.path.dirname(parent)


def _nearest_existing(path: str) -> str:
    path = os.path.abspath(path)
    while not os.path.exists(path):
        path = os.path.dirname(path)
    return path


def check_new_run_dir(path: str, flag: str = "--output_dir") -> None:
    """Refuses a path for a new run unless it is missing or an empty, writable directory.

    One-line ValueErrors for: a file, a path under a file, an unwritable location, and a
    non-empty directory (which may hold another run: mixing two runs loses data).
    """
    if not path:
        raise validation.invalid(flag, path, "a directory path")
    above = _file_above(path)
    if above is not None:
        raise validation.invalid(flag, path, f"a directory path ({above!r} is a file)")
    if os.path.exists(path) and not os.path.isdir(path):
        raise validation.invalid(flag, path, "a directory path (it is a file)")
    if not os.access(_nearest_existing(path), os.W_OK):
        raise validation.invalid(flag, path, f"a writable location ({_nearest_existing(path)!r} "
                                             "is not writable)")
    # A `*.tmp` file is what an atomic write killed before its rename leaves: not a run.
    held = [f for f in os.listdir(path) if not f.endswith(".tmp")] if os.path.isdir(path) else []
    if held:
        shown = ", ".join(sorted(held)[:4])
        raise validation.invalid(
            flag, path, f"a new or empty directory (it holds {shown}); pass --resume to "
            "continue the run there, or choose another directory"
        )


def run_kind(info: dict[str, Any]) -> str:
    """"sweep" for a sweep directory's config.json (it lists `seeds`), else "run"."""
    return "sweep" if "seeds" in info else "run"


def read_run_info(path: str) -> dict[str, Any]:
    """The parsed `config.json` of run directory `path`; one-line ValueError if it is missing,
    unreadable or lacks algo/env/config."""
    config_path = os.path.join(path, CONFIG_FILE)
    if not os.path.isdir(path):
        raise ValueError(f"run directory {path!r} does not exist or is not a directory")
    if not os.path.isfile(config_path):
        raise ValueError(f"{path!r} holds no {CONFIG_FILE}; it is not a run directory")
    try:
        with open(config_path) as f:
            info = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{config_path!r} is unreadable ({type(e).__name__}: {e})") from None
    missing = [k for k in ("algo", "env", "config") if not isinstance(info, dict) or k not in info]
    if missing:
        raise ValueError(f"{config_path!r} lacks {', '.join(missing)}; it is not a run's config")
    return info


def differing_fields(saved: Any, given: Any, prefix: str = "") -> list[str]:
    """Dotted paths where two JSON-like documents differ (e.g. `config.planner_config.population`).

    Dicts are compared key by key (a key on one side only differs); anything else by value.
    """
    if isinstance(saved, dict) and isinstance(given, dict):
        out = []
        for key in sorted(set(saved) | set(given), key=str):
            path = f"{prefix}{key}"
            if key not in saved or key not in given:
                out.append(path)
            else:
                out.extend(differing_fields(saved[key], given[key], path + "."))
        return out
    return [] if saved == given else [prefix.rstrip(".")]


def describe_differences(saved: dict[str, Any], given: dict[str, Any], limit: int = 6) -> str:
    """`field: saved -> given` for the first `limit` differing fields, in one line."""

    def at(doc: Any, path: str) -> Any:
        for key in path.split("."):
            doc = doc.get(key, "<missing>") if isinstance(doc, dict) else "<missing>"
        return doc

    fields = differing_fields(saved, given)
    parts = [f"{p}: {at(saved, p)!r} -> {at(given, p)!r}" for p in fields[:limit]]
    more = f" (and {len(fields) - limit} more)" if len(fields) > limit else ""
    return "; ".join(parts) + more


def check_resume_dir(path: str, run_info: dict[str, Any], flag: str = "--output_dir") -> bool:
    """Checks that `path` holds a run of the same kind and settings as `run_info` to resume.

    Returns whether its config.json exists (when only checkpoints/ is left, the checkpoint's
    own metadata is compared at restore). Raises ValueError naming differing fields.
    """
    if os.path.exists(path) and not os.path.isdir(path):
        raise validation.invalid(flag, path, "a run directory to resume (it is a file)")
    has_config = os.path.isfile(os.path.join(path, CONFIG_FILE))
    if not has_config and not os.path.isdir(os.path.join(path, CHECKPOINT_DIR)):
        raise validation.invalid(
            flag, path, f"with --resume, a directory holding a run ({CONFIG_FILE} and "
            f"{CHECKPOINT_DIR}/); start a new run without --resume"
        )
    if not has_config:
        return False
    saved = read_run_info(path)
    if run_kind(saved) != run_kind(run_info):
        raise ValueError(f"--resume: {path!r} holds a {run_kind(saved)}, not a "
                         f"{run_kind(run_info)}")
    given = json.loads(json.dumps(run_info))
    if saved != given:
        raise ValueError(
            f"--resume: the flags differ from the run in {path!r}: "
            f"{describe_differences(saved, given)}; resume with the run's own flags"
        )
    return True


def has_progress(path: str) -> bool:
    """Whether run directory `path` holds finished iterations: a record in metrics.jsonl or
    anything under checkpoints/ (even a partial save: the checkpointer decides about it)."""
    checkpoints = os.path.join(path, CHECKPOINT_DIR)
    if os.path.isdir(checkpoints) and os.listdir(checkpoints):
        return True
    metrics = os.path.join(path, METRICS_FILE)
    return os.path.isfile(metrics) and os.path.getsize(metrics) > 0


def write_run_info(path: str, run_info: dict[str, Any]) -> None:
    """Writes `config.json` atomically (a reader never sees half a file)."""
    from mbjax.logging import write_json_atomic

    os.makedirs(path, exist_ok=True)
    write_json_atomic(os.path.join(path, CONFIG_FILE), run_info)


# --------------------------------------------------------------------------- using a run


class Policy(NamedTuple):
    """A trained run's policy; unpacks as `(init_carry, act)`, what `make_policy` returns.

    init_carry(key) -> carry: the warm start (PETS: the planner state; SAC/MBPO: `()`).
    act(carry, obs [obs_dim], key) -> (carry, action [A], extras): one step; pass the returned
    carry to the next step. Both are pure and jittable.
    """

    init_carry: Callable[[Any], Any]
    act: Callable[..., tuple[Any, Any, Any]]


def _restore_state(run_dir: str, algo: Any, config: Any, info: dict[str, Any],
                   on_notice: Callable[[str], None] | None) -> tuple[Any, dict]:
    """The newest readable checkpoint's state (shaped like the program's real initial state)
    and meta; a corrupt newer step is skipped with a notice, as on resume."""
    import jax

    from mbjax.checkpoint import Checkpointer, CheckpointError, check_run_meta

    directory = os.path.join(run_dir, CHECKPOINT_DIR)
    if not os.path.isdir(directory):
        raise CheckpointError(f"{run_dir!r} holds no {CHECKPOINT_DIR}/ to load a policy from")
    like = algo.make_program(config).init(jax.random.PRNGKey(info.get("seed", 0)))

    def check(step: int, meta: dict[str, Any]) -> None:
        # The checkpoint must be this config.json's run (a checkpoint without a run description
        # predates them and is taken as is).
        if meta.get("run") is not None:
            check_run_meta(meta["run"], info, step, directory)

    checkpointer = Checkpointer(directory)
    try:
        _, state, meta = checkpointer.restore_newest_valid(like, check, on_notice)
        return state, meta
    finally:
        checkpointer.close()


def _check_policy_kwargs(algo: Any, policy_kwargs: dict[str, Any]) -> None:
    """The keywords must be ones this algorithm's make_policy takes (e.g. `deterministic` for
    SAC/MBPO), named in a one-line error otherwise."""
    params = inspect.signature(algo.make_policy).parameters
    allowed = [n for n in list(params)[2:] if params[n].kind is params[n].KEYWORD_ONLY
               or params[n].kind is params[n].POSITIONAL_OR_KEYWORD]
    for name in policy_kwargs:
        if name not in allowed:
            raise validation.invalid(f"{algo.name} policy option", name,
                                     f"one of {allowed}" if allowed else "none for this algorithm")


def load_policy(
    run_dir: str, *, on_notice: Callable[[str], None] | None = None, **policy_kwargs: Any
) -> tuple[Policy, dict[str, Any]]:
    """The policy of a trained run directory, from its config.json and newest checkpoint.

    policy_kwargs go to the algorithm's `make_policy` (e.g. `deterministic=False` for SAC/MBPO).
    on_notice(message): told when a corrupt newest checkpoint is skipped for an older one
    (default: a logging warning).
    Returns (Policy(init_carry, act), info); info: algo, env, seed, config (the Config object),
    iteration (iterations done), unit ("episode"/"epoch"), env_steps, records, run_dir.
    Raises ValueError (not a run directory, unknown algorithm, invalid config) or
    CheckpointError (no or unreadable checkpoint).
    """
    from mbjax import agents, configs

    if not isinstance(run_dir, (str, os.PathLike)) or not str(run_dir).strip():
        raise validation.invalid("run_dir", run_dir, "a run directory path")
    run_dir = str(run_dir)
    info = read_run_info(run_dir)
    if run_kind(info) != "run":
        raise ValueError(f"{run_dir!r} holds a sweep; load_policy takes a single run's "
                         "directory (python -m experiments.train)")
    algo = agents.get(info["algo"])
    config = configs.from_dict(algo.config_class, {**info["config"], "env": info["env"]})
    _check_policy_kwargs(algo, policy_kwargs)
    state, meta = _restore_state(run_dir, algo, config, info, on_notice)
    init_carry, act = algo.make_policy(config, state, **policy_kwargs)
    records = list(meta.get("records", []))
    return Policy(init_carry, act), {
        "algo": algo.name, "env": info["env"], "seed": info.get("seed", 0), "config": config,
        "iteration": len(records), "unit": algo.iteration_unit,
        "env_steps": records[-1]["env_steps"] if records else 0, "records": records,
        "run_dir": run_dir,
    }
