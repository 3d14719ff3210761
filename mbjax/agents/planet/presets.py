"""PlaNet presets: the paper's settings, a CPU-sized one that learns on 2 cores, and a tiny one.

"paper": Hafner, Lillicrap, Fischer, Villegas, Ha, Lee and Davidson, "Learning Latent Dynamics
for Planning from Pixels", ICML 2019: RSSM with 200 deterministic and 30 Gaussian stochastic
units, free nats 3, batch 50 sequences x 50 steps, Adam 1e-3 with eps 1e-4 and clip 1000,
C = 100 updates per collected episode, 5 seed episodes, CEM over horizon 12 with 1000 candidates,
the top 100 refit, 10 iterations, plans reinitialised from N(0, I) (alpha 0, init std 1), one
sampled latent trajectory per candidate, exploration noise N(0, 0.3^2), action repeat 8 for DM
Control cartpole (`dmc/Cartpole*`: 1000 env steps per episode = 125 decisions); mbjax's own
cartpole tasks step 0.04 s, so action repeat 2 keeps PlaNet's 0.08 s control period.
The RSSM's layers, heads and losses are DreamerV3's (`mbjax.models.rssm`); PlaNet's KL is a
single term, here kl_dyn_scale = 1 with a small kl_rep_scale.
"cpu": a small RSSM (128 deterministic, 16 stochastic, 64-unit layers) fitted 300 updates of
32 x 32 per episode, 2 seed episodes, CEM 300 / 30 / 5 over 12 steps (PlaNet's paper settings
cost ~35x more per decision); "test": tiny, seconds.
"""

from __future__ import annotations

import dataclasses

from mbjax.agents.planet.config import Config
from mbjax.models.rssm import RSSMConfig
from mbjax.planners import CEMConfig

_PAPER_MODEL = RSSMConfig(
    deter=200, stoch=30, classes=0, hidden=200, layers=2, free_bits=3.0, kl_dyn_scale=1.0,
    kl_rep_scale=0.1, learning_rate=1e-3, adam_eps=1e-4, grad_clip=1000.0, fit_steps=100,
    batch_size=50, seq_len=50,
)
_PAPER_CEM = CEMConfig(horizon=12, population=1000, num_elites=100, iterations=10, alpha=0.0,
                       init_std=1.0, sampling="clip")


def _paper(**kw) -> Config:
    return Config(model=_PAPER_MODEL, planner="cem", planner_config=_PAPER_CEM,
                  exploration_noise=0.3, num_seed_episodes=5, **kw)


def _cpu(**kw) -> Config:
    model = RSSMConfig(deter=128, stoch=16, classes=0, hidden=64, layers=1, free_bits=1.0,
                       kl_dyn_scale=1.0, kl_rep_scale=0.1, learning_rate=1e-3, adam_eps=1e-4,
                       fit_steps=300, batch_size=32, seq_len=32)
    cem = CEMConfig(horizon=12, population=300, num_elites=30, iterations=5, alpha=0.0,
                    init_std=1.0, sampling="clip")
    kw.setdefault("exploration_noise", 0.3)
    return Config(model=model, planner="cem", planner_config=cem, num_seed_episodes=2, **kw)


def _test(**kw) -> Config:
    model = RSSMConfig(deter=16, stoch=4, classes=0, hidden=16, layers=1, bins=31,
                       learning_rate=1e-3, fit_steps=3, batch_size=4, seq_len=8, depth=4)
    cem = CEMConfig(horizon=4, population=16, num_elites=4, iterations=2)
    return Config(model=model, planner="cem", planner_config=cem, num_episodes=3,
                  num_seed_episodes=1, episode_length=20, **kw)


# Per-env entries; envs without one get the generic settings of the preset.
PRESETS: dict[str, dict[str, Config]] = {
    "paper": {
        "cartpole_swingup": _paper(action_repeat=2, num_episodes=100),
        "cartpole_balance": _paper(env="cartpole_balance", action_repeat=2, num_episodes=100),
        "dmc/CartpoleSwingup": _paper(env="dmc/CartpoleSwingup", action_repeat=8,
                                      num_episodes=1000),
        "dmc/CartpoleBalance": _paper(env="dmc/CartpoleBalance", action_repeat=8,
                                      num_episodes=1000),
        "dmc/CheetahRun": _paper(env="dmc/CheetahRun", action_repeat=4, num_episodes=1000),
    },
    "cpu": {
        # mbjax's cartpoles push with 300 N per unit action (PETS' gear), so PlaNet's N(0, 0.3^2)
        # exploration is a ~90 N kick every 0.08 s; 0.1 keeps the collected swing-ups balanced.
        "cartpole_swingup": _cpu(action_repeat=2, num_episodes=20, exploration_noise=0.1),
        "cartpole_balance": _cpu(env="cartpole_balance", action_repeat=2, num_episodes=10,
                                 exploration_noise=0.1),
        "pendulum_swingup": _cpu(env="pendulum_swingup", action_repeat=2, num_episodes=20),
        "point_mass": _cpu(env="point_mass", num_episodes=10),
        "dmc/CartpoleSwingup": _cpu(env="dmc/CartpoleSwingup", action_repeat=8,
                                    num_episodes=30),
    },
    "test": {},
}


def preset(env: str, name: str = "cpu") -> Config:
    """The preset `name` for `env` (generic settings of `name` where env has no entry)."""
    if name not in PRESETS:
        raise ValueError(f"unknown PlaNet preset {name!r}; allowed: {sorted(PRESETS)}")
    table = PRESETS[name]
    if env in table:
        return dataclasses.replace(table[env], env=env)
    generic = {"paper": lambda: _paper(num_episodes=1000, action_repeat=4),
               "cpu": lambda: _cpu(num_episodes=20), "test": _test}[name]
    return dataclasses.replace(generic(), env=env)
