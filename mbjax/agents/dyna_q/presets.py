"""Dyna-Q presets. "paper": the book's figure 8.2 settings (alpha 0.1, epsilon 0.1, gamma 0.95,
n = 5 planning steps, 50 episodes); "cpu": the same (it takes seconds); "test": 5 episodes.
The shortcut/blocking mazes get figure 8.5's settings as replicated by S. Zhang's
reinforcement-learning-an-introduction code (alpha 1.0, n = 50, kappa 1e-3 / 1e-4, Dyna-Q+)."""

from __future__ import annotations

from mbjax.agents.dyna_q.config import Config
from mbjax.agents.sac.presets import choose

_CHANGING = {"maze/shortcut": dict(alpha=1.0, planning_steps=50, kappa=1e-3, plus=True),
             "maze/blocking": dict(alpha=1.0, planning_steps=10, kappa=1e-4, plus=True)}

PRESETS: dict[str, dict[str, Config]] = {
    name: {env: Config(episodes=episodes, **kw) for env, kw in _CHANGING.items()}
    for name, episodes in (("paper", 400), ("cpu", 400), ("test", 5))
}


def preset(env: str, name: str = "cpu") -> Config:
    """The preset `name` for `env` (generic settings of `name` where env has no entry)."""
    generic = {"paper": lambda: Config(episodes=50), "cpu": lambda: Config(episodes=50),
               "test": lambda: Config(episodes=5)}
    return choose("dyna_q", PRESETS, generic, env, name)
