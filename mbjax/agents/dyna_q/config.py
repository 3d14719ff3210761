"""Dyna-Q / Dyna-Q+ configuration (Sutton & Barto, Reinforcement Learning 2nd ed., 8.2-8.3)."""

from __future__ import annotations

import dataclasses

from mbjax import validation
from mbjax.agents.program import ON_NONFINITE


@dataclasses.dataclass(frozen=True)
class Config:
    """Tabular Dyna-Q (plus=False) or Dyna-Q+ (plus=True) on a tabular discrete env.

    env: a tabular env of `mbjax.envs.names()` (`maze/dyna`, `maze/blocking`, `maze/shortcut`).
    layout / layout_after / change_step: another maze (string grids, see
    `mbjax.envs.tasks.dyna_maze`); None: the env's own.
    episodes: iterations of the run (one iteration = one episode).
    max_episode_steps: the episode's time limit (None: the env's; the mazes have none).
    planning_steps: n planning updates per real step, from uniformly drawn previously seen
      (s, a) (Dyna-Q+: every action of a visited state, untried ones modelled as "stay, reward
      0", as in the book's footnote).
    alpha, epsilon, gamma: step size, epsilon-greedy exploration (ties broken at random),
      discount. kappa: Dyna-Q+'s bonus kappa * sqrt(tau) added to modelled rewards in planning,
      tau = real steps since (s, a) was last tried. The four are float32 leaves of the run
      state (grid axes of `experiments.sweep --grid.alpha=...`).
    """

    env: str = "maze/dyna"
    layout: str | None = None
    layout_after: str | None = None
    change_step: int | None = None
    episodes: int = 50
    max_episode_steps: int | None = None
    planning_steps: int = 5
    plus: bool = False
    alpha: float = 0.1
    epsilon: float = 0.1
    gamma: float = 0.95
    kappa: float = 1e-3
    on_nonfinite: str = "raise"

    def __post_init__(self) -> None:
        validation.field_int(self, "episodes")
        validation.field_optional_int(self, "max_episode_steps")
        validation.field_int(self, "planning_steps", lo=0)
        validation.field_bool(self, "plus")
        validation.field_float(self, "alpha", 0.0, 1.0, lo_open=True)
        validation.field_float(self, "epsilon", 0.0, 1.0)
        validation.field_float(self, "gamma", 0.0, 1.0)
        validation.field_float(self, "kappa", 0.0)
        for name in ("layout", "layout_after"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise validation.field_error(self, name, "a string grid or None")
        if self.change_step is not None:
            validation.field_int(self, "change_step", lo=0)
        validation.field_choice(self, "on_nonfinite", ON_NONFINITE)

    def env_kwargs(self) -> dict:
        """The maze options given (for `mbjax.envs.make`)."""
        names = ("layout", "layout_after", "change_step")
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}
