"""Hyperparameter grids as one compiled program: every (grid point x seed) is a row of a vmap.

A learner's numeric hyperparameters (planner alpha, learning rates, SAC's discount, ...) are
float32 leaves of its run state, not constants of its compiled step. A grid therefore needs no
recompilation per point: the runs share one program, and each run's state gets its point's values
right after `init`. Each algorithm declares which config fields are such leaves and how to set
them (`Algorithm.grid_leaves(config) -> {config path: setter(state, value) -> state}`); every
other field (horizon, population, network sizes, the planner's name...) changes shapes or code
and is refused as a grid axis.

    grid = make_grid(algorithm, config, {"planner_config.alpha": "0.05,0.1,0.2",
                                         "model.learning_rate": "1e-3,3e-4"})
    grid.cells          # [{"planner_config.alpha": 0.05, "model.learning_rate": 0.001}, ...]
    program = grid_program(algorithm.make_program(config), grid.setters)
    # program.init(key, {path: value}) = the base init with the cell's values set

A cell's results equal a single run of `cell_config(config, cell)` (the same values, set by
`init` from the config instead of after it).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from mbjax import configs, validation

# setter(state, value: float32 []) -> state with the value as its leaf
Setter = Callable[[Any, jax.Array], Any]
GRID_PREFIX = "--grid."


class Grid(NamedTuple):
    """axes: (config path, values) in the order given; setters: {path: Setter} of those paths."""

    axes: tuple[tuple[str, tuple[float, ...]], ...]
    setters: dict[str, Setter]

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(path for path, _ in self.axes)

    @property
    def cells(self) -> list[dict[str, float]]:
        """Every grid point {path: value}, the last axis varying fastest."""
        return [dict(zip(self.paths, point, strict=True))
                for point in itertools.product(*(values for _, values in self.axes))]

    def to_dict(self) -> dict[str, list[float]]:
        return {path: list(values) for path, values in self.axes}


def field_path(config: Any, name: str, prefix: str = "") -> str | None:
    """The dotted path of the first (depth-first) field called `name` in a nested dataclass,
    e.g. "cem.alpha" for CEM + gradient's `alpha`; None when there is none."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if f.name == name:
            return prefix + name
        if dataclasses.is_dataclass(value):
            found = field_path(value, name, prefix + f.name + ".")
            if found:
                return found
    return None


def config_value(config: Any, path: str) -> Any:
    """The value of the dotted field `path` of a nested dataclass config."""
    for head in path.split("."):
        config = getattr(config, head)
    return config


def float_leaf(value: Any) -> jax.Array:
    """A hyperparameter as the run state holds it: a float32 array (no retrace between a
    Python float and an array)."""
    return jnp.asarray(value, jnp.float32)


def _parse_values(config: Any, path: str, text: str) -> tuple[float, ...]:
    """The axis values of `--grid.<path>=<text>` (comma-separated), each parsed and validated
    as `--config.<path>` would be."""
    items = [t.strip() for t in text.split(",")]
    if not text.strip() or any(not t for t in items):
        raise validation.invalid(f"--grid.{path}", text,
                                 "a comma-separated list of numbers, e.g. 0.05,0.1,0.2")
    values = []
    for item in items:
        try:
            value = config_value(configs.override(config, path, item), path)
        except ValueError as e:
            raise ValueError(f"--grid.{path}={item!r}: {e}") from None
        if not isinstance(value, float) or not math.isfinite(value):
            raise validation.invalid(f"--grid.{path}", item, "a finite number")
        values.append(value)
    if len(set(values)) != len(values):
        raise validation.invalid(f"--grid.{path}", text, "distinct values")
    return tuple(values)


def make_grid(algorithm: Any, config: Any, texts: dict[str, str]) -> Grid:
    """The grid of `--grid.<path>=<v1>,<v2>,...` flags ({path: text}) for `algorithm` (an
    `Algorithm` record) around `config`. ValueError (one line) for an unknown field, a field that
    is not a numeric leaf of the run state (structural: it would need another program), a bad or
    repeated value, or an empty grid."""
    if not texts:
        raise ValueError("an empty grid: give at least one --grid.<field>=<v1>,<v2>,...")
    leaves = algorithm.grid_leaves(config) if algorithm.grid_leaves else {}
    axes = []
    for path, text in texts.items():
        configs.check_path(config, path)
        if path not in leaves:
            allowed = ", ".join(sorted(leaves)) or "none"
            raise ValueError(
                f"--grid.{path} is invalid: {path} is not a numeric hyperparameter leaf of "
                f"a {algorithm.name} run (it changes shapes or code, so each value needs its own "
                f"program: run one sweep per value); allowed grid fields here: {allowed}"
            )
        axes.append((path, _parse_values(config, path, text)))
    return Grid(tuple(axes), {path: leaves[path] for path in texts})


def cell_config(config: Any, cell: dict[str, float]) -> Any:
    """`config` with the cell's values: the config of the equivalent single run."""
    return configs.apply_overrides(config, {path: repr(v) for path, v in cell.items()})


def cell_name(index: int, cell: dict[str, float]) -> str:
    """A folder name for a cell: its index (sorting as the grid does) and its values."""
    return f"cell_{index:03d}__" + "__".join(f"{path}={value:g}" for path, value in cell.items())


def apply_cell(setters: dict[str, Setter], state: Any, values: dict[str, Any]) -> Any:
    """`state` with every grid value set (values: {path: float32 []}; traced inside a vmap)."""
    for path, value in values.items():
        state = setters[path](state, float_leaf(value))
    return state


def grid_program(program: Any, setters: dict[str, Setter]) -> Any:
    """`program` whose init takes the cell's values: init(key, values={path: value}) is the base
    init followed by `apply_cell` (so a vmap over runs takes keys [R] and values {path: [R]})."""

    def init(key: jax.Array, values: dict[str, Any]) -> Any:
        return apply_cell(setters, program.init(key), values)

    return program._replace(init=init)


def split_grid_flags(argv: list[str]) -> tuple[list[str], dict[str, str]]:
    """Removes `--grid.<path>=<values>` items from argv and returns them ({path: text})."""
    rest, grid = [], {}
    for arg in argv:
        if not arg.startswith(GRID_PREFIX):
            rest.append(arg)
            continue
        body = arg[len(GRID_PREFIX):]
        if "=" not in body:
            raise ValueError(f"{arg!r}: grid axes take the form --grid.<field>=<v1>,<v2>,...")
        path, text = body.split("=", 1)
        if path in grid:
            raise validation.invalid(f"--grid.{path}", text, "one --grid flag per field")
        grid[path] = text
    return rest, grid


# ------------------------------------------------------------------ leaves shared by learners


def planner_leaves(planner: Any, planner_config: Any, prefix: str,
                   set_hparams: Callable[[Any, dict[str, jax.Array]], Any]) -> dict[str, Setter]:
    """Setters for a planner's numeric hyperparameters (`state.hparams` fields), keyed by their
    config paths under `prefix` (e.g. "planner_config.alpha"; CEM + gradient's alpha is
    "planner_config.cem.alpha"). set_hparams(state, {field: value}) stores them in the run
    state."""
    hparams = jax.eval_shape(lambda k: planner.init(1, k).hparams, jax.random.PRNGKey(0))
    if hparams is None:
        return {}
    leaves = {}
    for f in dataclasses.fields(hparams):
        path = field_path(planner_config, f.name)
        if path is None:
            raise ValueError(f"planner hyperparameter {f.name!r} has no config field of that name")
        leaves[prefix + path] = (
            lambda state, value, name=f.name: set_hparams(state, {name: value})
        )
    return leaves


def model_leaves(prefix: str = "model.") -> dict[str, Setter]:
    """The ensemble's learning rate (a leaf of its optimizer state) for a run state with a
    `model` field holding the config's ensemble."""
    from mbjax.models import set_learning_rate

    return {prefix + "learning_rate":
            lambda state, value: state.replace(model=set_learning_rate(state.model, value))}


# ------------------------------------------------------------------------------ summary


def summary_rows(grid: Grid, finals: Any, bests: Any) -> list[dict[str, Any]]:
    """One row per cell: its values and final / best return mean, min, max over seeds.
    finals, bests: [cells, seeds]."""
    import numpy as np

    rows = []
    for i, cell in enumerate(grid.cells):
        final, best = np.asarray(finals[i], float), np.asarray(bests[i], float)
        rows.append({"cell": i, **cell,
                     "final_return_mean": float(final.mean()), "final_return_min": float(
                         final.min()), "final_return_max": float(final.max()),
                     "best_return_mean": float(best.mean())})
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """The rows as an aligned text table (numbers with 4 significant digits)."""
    if not rows:
        return ""
    columns = list(rows[0])
    cells = [[f"{r[c]:.4g}" if isinstance(r[c], float) else str(r[c]) for c in columns]
             for r in rows]
    widths = [max(len(c), *(len(row[j]) for row in cells)) for j, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines) + "\n"
