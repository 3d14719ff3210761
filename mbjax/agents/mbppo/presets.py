"""MB-PPO presets: "paper" (ME-TRPO's sizes, Kurutach et al. 2018: 5 x 2x1024 ReLU members,
2x32 tanh-free policy MLPs here with PPO; validation ratio 0.7 and patience 1, the rule as the
paper states it), "cpu" (minutes on 2 cores), "test" (seconds)."""

from __future__ import annotations

from mbjax.agents.mbppo.config import Config, PPOConfig
from mbjax.agents.sac.presets import choose
from mbjax.models import EnsembleConfig

_CPU_MODEL = EnsembleConfig(ensemble_size=5, num_elites=5, hidden_sizes=(200, 200, 200),
                            learning_rate=1e-3, batch_size=32, max_epochs=100, patience=10)

_GENERIC = {
    "paper": lambda: Config(
        num_episodes=50, num_rollouts=2000, horizon=100, policy_iterations=50,
        model=EnsembleConfig(ensemble_size=5, num_elites=5, hidden_sizes=(1024, 1024),
                             activation="relu", batch_size=128, max_epochs=100, patience=10),
        ppo=PPOConfig(hidden_sizes=(64, 64))),
    # cpu: 15 episodes = 3x PETS's 5 on cartpole_swingup. 40 PPO iterations per episode and a
    # patience of 20 checks: with patience 1 the rule fired on check noise after 1-2 iterations
    # (the policy hardly learned); here it stops only a PPO run that has stalled in the model.
    "cpu": lambda: Config(num_episodes=15, num_rollouts=500, horizon=50, policy_iterations=40,
                          validation_patience=20, model=_CPU_MODEL,
                          ppo=PPOConfig(learning_rate=1e-3)),
    "test": lambda: Config(
        num_episodes=3, num_rollouts=16, horizon=5, policy_iterations=2, num_eval_episodes=1,
        model=EnsembleConfig(ensemble_size=2, hidden_sizes=(16,), max_epochs=5, patience=None),
        ppo=PPOConfig(hidden_sizes=(16,), epochs=1, minibatches=2)),
}
PRESETS: dict[str, dict[str, Config]] = {name: {} for name in _GENERIC}


def preset(env: str, name: str = "cpu") -> Config:
    """The preset `name` for `env`."""
    return choose("mbppo", PRESETS, _GENERIC, env, name)
