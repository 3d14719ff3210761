"""PETS presets: the paper's settings, and CPU-sized ones that finish in minutes on 2 cores.

`preset(env, name)` returns a Config; names: "paper" (Chua, Calandra, McAllister and Levine,
"Deep Reinforcement Learning in a Handful of Trials using Probabilistic Dynamics Models",
NeurIPS 2018, and its released code: 5 bootstrapped members, CEM with 5 iterations and
alpha 0.1, TS-infinity with 20 particles, per-task network sizes, populations and horizons),
"cpu" (small ensemble and planner; the README Quickstart uses cartpole_swingup/cpu), "test"
(tiny, for the test suite). Envs without a dedicated entry get the generic settings of `name`.
Each preset also sizes the learned terminal value used with `terminal_value=True` (off by
default): "paper" SAC's 2 x 256 networks and 1000 updates per episode, "cpu" 2 x 128 and 500,
"test" 2 x 32 and 20.
"""

from __future__ import annotations

import dataclasses

from mbjax.agents.pets.config import Config, TerminalValueConfig
from mbjax.agents.sac import SACConfig
from mbjax.models import EnsembleConfig
from mbjax.planners import CEMConfig, ICEMConfig
from mbjax.rollout import PropagationConfig

# PETS weight decays for a 4-layer net (3 hidden + output) / 5-layer net (4 hidden + output).
_PETS_DECAY_3 = (2.5e-5, 5e-5, 7.5e-5, 1e-4)
_PETS_DECAY_4 = (2.5e-5, 5e-5, 7.5e-5, 7.5e-5, 1e-4)


def _paper(
    hidden: tuple[int, ...], pop: int, elites: int, horizon: int, learned_reward: bool = False,
    **kw,
) -> Config:
    decay = _PETS_DECAY_3 if len(hidden) == 3 else _PETS_DECAY_4
    return Config(
        model=EnsembleConfig(
            ensemble_size=5, hidden_sizes=hidden, weight_decays=decay, learning_rate=1e-3,
            batch_size=32, max_epochs=5, patience=None, predict_reward=learned_reward,
        ),
        learned_reward=learned_reward,
        planner="cem",
        planner_config=CEMConfig(
            horizon=horizon, population=pop, num_elites=elites, iterations=5, alpha=0.1
        ),
        propagation=PropagationConfig(mode="tsinf", num_particles=20),
        **kw,
    )


def _cpu(**kw) -> Config:
    """PETS' structure at CPU size: a 5 x 3x200 ensemble, TS-inf with 10 particles, and iCEM
    (paper defaults: 107 trajectories per plan instead of CEM's 2000) over PETS' 25-step horizon.
    On cartpole_swingup it matches the paper's CEM returns (see benchmarks/learning_pets.py)."""
    return Config(
        model=EnsembleConfig(
            ensemble_size=5, hidden_sizes=(200, 200, 200), weight_decays=_PETS_DECAY_3,
            learning_rate=1e-3, batch_size=32, max_epochs=200, patience=20,
        ),
        planner="icem",
        planner_config=ICEMConfig(horizon=25),
        propagation=PropagationConfig(mode="tsinf", num_particles=10),
        value=TerminalValueConfig(sac=_value_sac(hidden_sizes=(128, 128), batch_size=128),
                                  updates_per_episode=500),
        **kw,
    )


def _test(**kw) -> Config:
    return Config(
        model=EnsembleConfig(
            ensemble_size=2, hidden_sizes=(32, 32), learning_rate=3e-3, batch_size=32,
            max_epochs=15, patience=None,
        ),
        planner="cem",
        planner_config=CEMConfig(horizon=8, population=64, num_elites=8, iterations=3),
        propagation=PropagationConfig(mode="tsinf", num_particles=2),
        value=TerminalValueConfig(sac=_value_sac(hidden_sizes=(32, 32), batch_size=64),
                                  updates_per_episode=20, expansion_horizon=2),
        **kw,
    )


def _value_sac(**kw) -> SACConfig:
    """The terminal value's SAC, with TerminalValueConfig's small initial temperature."""
    return dataclasses.replace(TerminalValueConfig().sac, **kw)


PRESETS: dict[str, dict[str, Config]] = {
    "paper": {
        "cartpole_swingup": _paper((500, 500, 500), 400, 40, 25, num_episodes=15),
        "brax/halfcheetah": _paper(
            (200, 200, 200, 200), 500, 50, 30, env="brax/halfcheetah", num_episodes=100,
            episode_length=1000, learned_reward=True,
        ),
        "brax/reacher": _paper((200, 200, 200, 200), 400, 40, 25, env="brax/reacher",
                               num_episodes=100, episode_length=150),
    },
    "cpu": {
        "cartpole_swingup": _cpu(num_episodes=8),
        "cartpole_balance": _cpu(env="cartpole_balance", num_episodes=6),
        "pendulum_swingup": _cpu(env="pendulum_swingup", num_episodes=6),
        "point_mass": _cpu(env="point_mass", num_episodes=4),
        # DM Control runs at 100 Hz: repeat each action 4 times (as PlaNet/Dreamer do for
        # cartpole), so an episode is 250 decisions and returns stay on the 0-1000 scale.
        "dmc/CartpoleSwingup": _cpu(env="dmc/CartpoleSwingup", num_episodes=8, action_repeat=4),
        "dmc/CartpoleSwingupSparse": _cpu(env="dmc/CartpoleSwingupSparse", num_episodes=8,
                                          action_repeat=4),
        "brax/inverted_pendulum": _cpu(env="brax/inverted_pendulum", num_episodes=5),
        # Brax's forward reward is estimated from observed velocities (see envs.describe()).
        "brax/halfcheetah": dataclasses.replace(
            _cpu(env="brax/halfcheetah", num_episodes=4, use_estimated_reward=True),
            planner_config=ICEMConfig(horizon=30, noise_beta=0.25),
        ),
    },
    "test": {},
}


def preset(env: str, name: str = "cpu") -> Config:
    """The preset `name` for `env` (generic settings of `name` where env has no entry)."""
    if name not in PRESETS:
        raise ValueError(f"unknown PETS preset {name!r}; allowed: {sorted(PRESETS)}")
    table = PRESETS[name]
    if env in table:
        return dataclasses.replace(table[env], env=env)
    generic = {"paper": lambda: _paper((200, 200, 200, 200), 500, 50, 30),
               "cpu": lambda: _cpu(num_episodes=10), "test": lambda: _test(num_episodes=3)}[name]
    return dataclasses.replace(generic(), env=env)
