"""GPS presets. "paper": Levine & Abbeel 2014's settings (5 samples per iteration, a NIW prior of
strength 1 per the reference code's defaults, kl_step 0.2 with the step multiplier in
[0.01, 10], 10 iterations; their networks were larger, 40-unit layers for the 2-D tasks);
"cpu": the same budget (it takes a minute on 2 cores); "test": 2 iterations, short rollouts,
a small network. Tasks whose reward has its own curvature (point_mass, pendulum_swingup) drop the
quadratic state cost (it would pull the state to 0, not to their goal)."""

from __future__ import annotations

from mbjax.agents.gps.config import Config
from mbjax.agents.sac.presets import choose

_OWN_COST = ("point_mass", "pendulum_swingup")
PRESETS: dict[str, dict[str, Config]] = {
    "paper": {env: Config(policy_hidden_sizes=(40, 40), state_cost=0.0) for env in _OWN_COST},
    "cpu": {env: Config(state_cost=0.0) for env in _OWN_COST},
    "test": {},
}


def preset(env: str, name: str = "cpu") -> Config:
    """The preset `name` for `env` (generic settings of `name` where env has no entry)."""
    generic = {
        "paper": lambda: Config(iterations=10, num_rollouts=5, policy_hidden_sizes=(40, 40)),
        "cpu": lambda: Config(iterations=10, num_rollouts=5),
        "test": lambda: Config(iterations=2, num_rollouts=3, episode_length=20,
                               policy_hidden_sizes=(16,), policy_steps=10, eval_episodes=2,
                               eta_iterations=30),
    }
    return choose("gps", PRESETS, generic, env, name)
