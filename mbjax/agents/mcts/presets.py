"""MCTS agent presets.

"paper": MuZero searched with 800 simulations for board games and 50 for Atari (Schrittwieser
et al. 2020, Nature 588); Gumbel MuZero (Danihelka et al., ICLR 2022) improves the policy with
as few as 16 or fewer. We take 32 (issue 17's upper end) with the lookahead leaf value and, for
the learned model, PETS' 5 x 3x200 ensemble (Chua et al. 2018). "cpu": 16 simulations (issue
17's 16-32 range); learned: a 5 x 3x128 ensemble. With `learned(config)` both use
uniform-rollout leaves (the lookahead value through an ensemble is too slow for 2 cores).
"test": seconds. "learned_paper" / "learned_cpu" / "learned_test" are `learned(...)` of those
(`--config.model=learned` alone keeps the lookahead leaves: slow on CPU).
"""

from __future__ import annotations

import dataclasses

from mbjax.agents.mcts.config import Config
from mbjax.agents.sac.presets import choose
from mbjax.models import EnsembleConfig
from mbjax.planners.mcts import MCTSConfig

_PETS_DECAY_3 = (2.5e-5, 5e-5, 7.5e-5, 1e-4)


def _paper() -> Config:
    return Config(
        num_episodes=10,
        search=MCTSConfig(num_simulations=32),
        ensemble=EnsembleConfig(ensemble_size=5, hidden_sizes=(200, 200, 200),
                                weight_decays=_PETS_DECAY_3, batch_size=32, max_epochs=200,
                                patience=20))


def _cpu() -> Config:
    return Config(
        num_episodes=10,
        search=MCTSConfig(num_simulations=16),
        ensemble=EnsembleConfig(ensemble_size=5, hidden_sizes=(128, 128, 128),
                                weight_decays=_PETS_DECAY_3, batch_size=32, max_epochs=100,
                                patience=10))


def _test() -> Config:
    return Config(
        num_episodes=3, episode_length=20,
        search=MCTSConfig(num_simulations=4, rollout_policy="uniform", rollout_steps=3,
                          num_rollouts=2),
        ensemble=EnsembleConfig(ensemble_size=2, hidden_sizes=(16, 16), batch_size=16,
                                max_epochs=2, patience=None))


def learned(config: Config) -> Config:
    """`config` with model="learned" and the search settings its preset uses for a learned
    model (uniform-rollout leaves: 8 rollouts of 30 steps at cpu/paper size)."""
    search = config.search
    if search.rollout_policy == "lookahead":
        search = dataclasses.replace(search, rollout_policy="uniform", rollout_steps=30,
                                     num_rollouts=8)
    return dataclasses.replace(config, model="learned", search=search)


_GENERIC = {"paper": _paper, "cpu": _cpu, "test": _test}
_GENERIC.update({f"learned_{name}": (lambda make=make: learned(make()))
                 for name, make in list(_GENERIC.items())})
PRESETS: dict[str, dict[str, Config]] = {name: {} for name in _GENERIC}
PRESET_NAMES = tuple(_GENERIC)


def preset(env: str, name: str = "cpu") -> Config:
    """The preset `name` for `env`: paper / cpu / test (true model) or learned_paper /
    learned_cpu / learned_test (learned ensemble)."""
    return choose("mcts", PRESETS, _GENERIC, env, name)
