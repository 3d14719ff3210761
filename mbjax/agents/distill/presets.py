"""Distillation presets: "paper" (DAgger's schedule, beta_i = 0.5^i, many iterations), "cpu"
(minutes on 2 cores), "test" (seconds). The teacher run is always given with
`--config.teacher_run=<run_dir>`."""

from __future__ import annotations

from mbjax.agents.distill.config import Config
from mbjax.agents.sac.presets import choose

_GENERIC = {
    "paper": lambda: Config(iterations=20, episodes_per_iteration=4, hidden_sizes=(256, 256),
                            train_steps=2000),
    # 94% of a PETS teacher's return on cartpole_swingup (benchmarks/distill_mpc.py); the
    # config defaults (8 x 2 episodes, 64 x 64, 1,000 steps) reach 87%.
    "cpu": lambda: Config(iterations=12, episodes_per_iteration=4, hidden_sizes=(128, 128),
                          train_steps=2000),
    "test": lambda: Config(iterations=2, episodes_per_iteration=1, hidden_sizes=(16,),
                           train_steps=20, batch_size=32, num_eval_episodes=1),
}
PRESETS: dict[str, dict[str, Config]] = {name: {} for name in _GENERIC}


def preset(env: str, name: str = "cpu") -> Config:
    """The preset `name` for `env`."""
    return choose("distill", PRESETS, _GENERIC, env, name)


__all__ = ["PRESETS", "preset"]
