"""Hyperparameter grids in one program (issue 12): one trace for every grid point x seed, cells
equal to single runs with the cell's settings, setters equal to configs for every leaf."""

import dataclasses

import jax
import numpy as np
import pytest

from mbjax import agents, configs, grid
from mbjax.agents.program import run_host
from mbjax.agents.sweep import run_sweep


def _pets_config(**kw):
    config = agents.get("pets").preset("point_mass", "test")
    return dataclasses.replace(config, env="point_mass", num_episodes=2, **kw)


def _counting(program):
    """`program` whose init and steps count their traces (a recompile would add one)."""
    traces = {}

    def counted(name, fn):
        def wrapper(*args):
            traces[name] = traces.get(name, 0) + 1
            return fn(*args)
        return wrapper

    segments = tuple(s._replace(step=counted(f"step{i}", s.step))
                     for i, s in enumerate(program.segments))
    return program._replace(init=counted("init", program.init), segments=segments), traces


def test_grid_of_3x3_points_x_3_seeds_traces_once_and_cells_equal_single_runs():
    algo, config = agents.get("pets"), _pets_config()
    g = grid.make_grid(algo, config, {"planner_config.alpha": "0.05,0.1,0.3",
                                      "model.learning_rate": "1e-3,3e-3,1e-2"})
    assert len(g.cells) == 9
    seeds = [0, 1, 2]
    program, traces = _counting(grid.grid_program(algo.make_program(config), g.setters))
    runs = [(cell, s) for cell in g.cells for s in seeds]
    values = {p: [cell[p] for cell, _ in runs] for p in g.paths}
    _, records, info = run_sweep(program, [s for _, s in runs], values=values)
    assert info["num_runs"] == 27
    assert traces == {"init": 1, "step0": 1, "step1": 1}  # one program for all 27 runs
    finals = np.array([r[-1]["episode_return"] for r in records]).reshape(9, 3)
    assert len(np.unique(finals.round(3))) > 9  # the cells' settings change the runs
    for index, seed in ((0, 0), (5, 1), (7, 2)):  # cells against their single runs
        cell_config = grid.cell_config(config, g.cells[index])
        assert cell_config.planner_config.alpha == g.cells[index]["planner_config.alpha"]
        _, single = run_host(algo.make_program(cell_config), seed=seed)
        np.testing.assert_allclose(
            [r["episode_return"] for r in single],
            [r["episode_return"] for r in records[index * 3 + seed]], rtol=1e-3, atol=1e-3)


def _changed(value):
    """Another valid value of a leaf (None: SAC's target entropy, -action_size by default)."""
    if value is None:
        return -1.5
    return value * 0.5 if value > 0 else value - 0.5


CASES = [
    ("pets", "point_mass", {"planner": "icem"}, 3),
    ("pets", "point_mass", {"planner": "mppi"}, 3),
    ("pets", "point_mass", {"planner": "cem_gradient"}, 3),
    ("sac", "point_mass", {}, 2),
    ("mbpo", "point_mass", {}, 2),
]


@pytest.mark.parametrize("name, env, overrides, iterations", CASES,
                         ids=[f"{c[0]}-{c[2].get('planner', '')}" for c in CASES])
def test_every_grid_leaf_set_after_init_equals_a_run_configured_with_it(name, env, overrides,
                                                                         iterations):
    # All leaves at once, changed from the preset: a setter that misses its leaf, or a step that
    # reads the config's value instead of the state's, makes the two runs differ.
    algo = agents.get(name)
    base = configs.apply_overrides(algo.preset(env, "test"), overrides)
    leaves = algo.grid_leaves(base)
    cell = {path: _changed(grid.config_value(base, path)) for path in leaves}
    configured = algo.make_program(grid.cell_config(base, cell))
    gridded = grid.grid_program(algo.make_program(base), grid.Grid(
        tuple((p, (v,)) for p, v in cell.items()), {p: leaves[p] for p in cell}).setters)
    key = jax.random.PRNGKey(3)
    a = jax.jit(configured.init)(key)
    b = jax.jit(gridded.init)(key, {p: np.float32(v) for p, v in cell.items()})
    for i in range(iterations):
        a, ma = jax.jit(configured.step_at(i))(a)
        b, mb = jax.jit(gridded.step_at(i))(b)
        np.testing.assert_allclose(ma.episode_return, mb.episode_return, rtol=1e-5, atol=1e-5)
    jax.tree_util.tree_map(
        lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5), a, b)
    assert set(leaves) >= set(cell)


def test_grid_cells_names_and_table():
    algo, config = agents.get("pets"), _pets_config()
    g = grid.make_grid(algo, config, {"planner_config.alpha": "0.1,0.2",
                                      "model.learning_rate": "1e-3,3e-4,1e-4"})
    assert [c["model.learning_rate"] for c in g.cells[:3]] == [1e-3, 3e-4, 1e-4]  # last fastest
    assert g.cells[3] == {"planner_config.alpha": 0.2, "model.learning_rate": 1e-3}
    assert grid.cell_name(4, g.cells[4]) == (
        "cell_004__planner_config.alpha=0.2__model.learning_rate=0.0003")
    finals = np.arange(12.0).reshape(6, 2)
    rows = grid.summary_rows(g, finals, finals + 1)
    assert rows[2]["final_return_mean"] == 4.5 and rows[2]["final_return_min"] == 4.0
    assert rows[2]["best_return_mean"] == 5.5
    table = grid.format_table(rows).splitlines()
    assert len(table) == 7 and "planner_config.alpha" in table[0] and "4.5" in table[3]
