"""Sutton & Barto's grid mazes (Reinforcement Learning, 2nd ed., sections 8.2-8.3), as data.

A layout is a string grid, rows separated by newlines or "/": '.' free, '#' wall, 'S' the start
(exactly one), 'G' a goal (at least one). Actions 0..3 = up, down, left, right; a move into a
wall or off the grid leaves the agent in place. Reward 1 on entering a goal (the episode
terminates there), 0 otherwise. obs = the int32 state index `row * width + col` `[]`;
`num_states` = height * width (walls included; they are never visited).

Changing mazes: with `layout_after` and `change_step`, the walls become those of `layout_after`
once the run has taken `change_step` steps (the world's clock `MazeState.t`, which `restart`
keeps across episodes). Start and goals come from `layout` and must agree in `layout_after`.

Registered: `maze/dyna` (the 6x9 Dyna Maze, figure 8.2), `maze/blocking` (figure 8.4: the
opening moves from the right end to the left end after 1000 steps), `maze/shortcut` (figure
8.5: a second opening appears on the right after 3000 steps). Any of them takes `layout=`
(and `layout_after=`, `change_step=`) to run another maze:
`mbjax.envs.make("maze/dyna", layout="S..#/.#.G")`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mbjax import validation
from mbjax.envs.base import State
from mbjax.envs.discrete import DiscreteEnv

DYNA_MAZE = """\
.......#G
..#....#.
S.#....#.
..#......
.....#...
........."""
BLOCKING_BEFORE = """\
........G
.........
.........
########.
.........
...S....."""
BLOCKING_AFTER = """\
........G
.........
.........
.########
.........
...S....."""
SHORTCUT_BEFORE = BLOCKING_AFTER
SHORTCUT_AFTER = """\
........G
.........
.........
.#######.
.........
...S....."""
# (row, col) moves of actions 0..3: up, down, left, right.
MOVES = np.array([[-1, 0], [1, 0], [0, -1], [0, 1]], np.int32)
DEFAULT_EPISODE_LENGTH = 100_000  # the book's mazes have no time limit


class MazeState(NamedTuple):
    """pos: int32 [] state index; t: int32 [] steps taken in this world (all episodes)."""

    pos: jax.Array
    t: jax.Array


class Layout(NamedTuple):
    """A parsed layout: walls bool [H, W], start int, goals bool [H, W]."""

    walls: np.ndarray
    start: int
    goals: np.ndarray


def parse_layout(text: str, what: str = "layout") -> Layout:
    """Parses a string grid (see the module docstring); one-line ValueError if malformed."""
    if not isinstance(text, str) or not text.strip():
        raise validation.invalid(what, text, "a non-empty string grid of '.', '#', 'S', 'G'")
    rows = [r.strip() for r in text.strip().replace("/", "\n").splitlines() if r.strip()]
    if len({len(r) for r in rows}) != 1:
        raise validation.invalid(what, text, "rows of equal length (separated by newlines or /)")
    grid = np.array([list(r) for r in rows])
    bad = sorted(set(grid.ravel()) - set(".#SG"))
    if bad:
        raise validation.invalid(what, text, f"only the characters '.#SG' (found {bad})")
    if (grid == "S").sum() != 1 or (grid == "G").sum() < 1:
        raise validation.invalid(what, text, "exactly one start 'S' and at least one goal 'G'")
    return Layout(walls=grid == "#", start=int(np.flatnonzero(grid == "S")[0]), goals=grid == "G")


def transition_table(walls: np.ndarray) -> np.ndarray:
    """next state index [S, 4] of every state and action under `walls` [H, W]."""
    height, width = walls.shape
    rows, cols = np.divmod(np.arange(height * width), width)
    r = np.clip(rows[:, None] + MOVES[None, :, 0], 0, height - 1)
    c = np.clip(cols[:, None] + MOVES[None, :, 1], 0, width - 1)
    blocked = walls[r, c]
    nxt = np.where(blocked, np.arange(height * width)[:, None], r * width + c)
    return nxt.astype(np.int32)


class Maze(DiscreteEnv):
    """A grid maze; see the module docstring. Unbatched and jittable."""

    num_actions = 4
    default_episode_length = DEFAULT_EPISODE_LENGTH
    name = "maze"

    def __init__(self, layout: str = DYNA_MAZE, layout_after: str | None = None,
                 change_step: int | None = None):
        first = parse_layout(layout, f"{self.name}: layout")
        if (layout_after is None) != (change_step is None):
            raise ValueError(f"{self.name}: layout_after and change_step go together "
                             f"(got layout_after={layout_after!r}, change_step={change_step!r})")
        after = first
        if layout_after is not None:
            validation.check_int(f"{self.name}: change_step", change_step, lo=0)
            after = parse_layout(layout_after, f"{self.name}: layout_after")
            if after.walls.shape != first.walls.shape or after.start != first.start or not (
                    after.goals == first.goals).all():
                raise validation.invalid(f"{self.name}: layout_after", layout_after,
                                         "a grid of the same size, start and goals as layout")
        self.layout, self.layout_after = layout, layout_after
        self.change_step = change_step
        self.shape = first.walls.shape
        self.num_states = int(first.walls.size)
        self.start = first.start
        self.walls = jnp.asarray(first.walls.ravel())  # [S] (before the change)
        self.goals = jnp.asarray(first.goals.ravel())  # [S]
        self.next_before = jnp.asarray(transition_table(first.walls))  # [S, 4]
        self.next_after = jnp.asarray(transition_table(after.walls))  # [S, 4]

    def next_state(self, pos: jax.Array, action: jax.Array, t: jax.Array) -> jax.Array:
        """int32 [] next state of `pos` under `action` at world time `t`."""
        changed = jnp.asarray(False) if self.change_step is None else t >= self.change_step
        return jnp.where(changed, self.next_after[pos, action], self.next_before[pos, action])

    def _state(self, maze: MazeState) -> State:
        zero = jnp.zeros((), jnp.float32)
        return State(pipeline_state=maze, obs=maze.pos, reward=zero, done=zero)

    def reset(self, rng: jax.Array) -> State:
        del rng  # the start is fixed
        return self._state(MazeState(jnp.int32(self.start), jnp.int32(0)))

    def restart(self, state: State, rng: jax.Array) -> State:
        del rng
        return self._state(MazeState(jnp.int32(self.start), state.pipeline_state.t))

    def step(self, state: State, action: jax.Array) -> State:
        maze = state.pipeline_state
        pos = self.next_state(maze.pos, jnp.asarray(action, jnp.int32), maze.t)
        at_goal = self.goals[pos].astype(jnp.float32)
        return state.replace(pipeline_state=MazeState(pos, maze.t + 1), obs=pos,
                             reward=at_goal, done=at_goal)

    @property
    def observation_size(self) -> int:
        return 1


class DynaMaze(Maze):
    """`maze/dyna`: the 6x9 Dyna Maze of figure 8.2 (start (2, 0), goal (0, 8))."""

    name = "maze/dyna"


class BlockingMaze(Maze):
    """`maze/blocking`: figure 8.4; the right-hand opening closes and a left one opens."""

    name = "maze/blocking"

    def __init__(self, layout: str = BLOCKING_BEFORE, layout_after: str | None = BLOCKING_AFTER,
                 change_step: int | None = 1000):
        super().__init__(layout, layout_after, change_step)


class ShortcutMaze(Maze):
    """`maze/shortcut`: figure 8.5; a shortcut opens on the right after 3000 steps."""

    name = "maze/shortcut"

    def __init__(self, layout: str = SHORTCUT_BEFORE, layout_after: str | None = SHORTCUT_AFTER,
                 change_step: int | None = 3000):
        super().__init__(layout, layout_after, change_step)
