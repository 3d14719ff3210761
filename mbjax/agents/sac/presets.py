"""SAC presets: the paper's settings, CPU-sized ones that finish in minutes on 2 cores, tiny ones.

`preset(env, name)` returns a Config; names: "paper" (Haarnoja et al. 2018, "Soft Actor-Critic
Algorithms and Applications": 2 x 256 ReLU networks, Adam 3e-4, batch 256, discount 0.99,
tau 0.005, learned temperature with target entropy -|A|, one update per env step, a 1e6 replay
buffer, 1000 uniform-random steps first; budget per task as in its learning curves), "cpu" (the
SAC settings of MBPO's cpu preset: 2 x 128 networks, batches of 128), "test" (tiny, for the test
suite). Envs without an entry get the generic settings of `name`.

Each preset also sizes the model used when `value_expansion` is "mve" or "steve" (ignored
otherwise): "paper" STEVE's H = 3 with MBPO's 4 x 200 networks (4 members, all used), "cpu" 3 x 200
networks and at most 40 fit epochs, "test" a tiny model.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

from mbjax.agents.sac.config import EXPANSION_MODEL, Config, ExpansionConfig, SACConfig


def _paper(epochs: int = 1000, **kw) -> Config:
    """1000-step epochs; `epochs` thousand env steps in all."""
    return Config(
        num_epochs=epochs, steps_per_epoch=1000, init_random_steps=1000, updates_per_step=1,
        num_eval_episodes=10, replay_capacity=1_000_000,
        sac=SACConfig(hidden_sizes=(256, 256), batch_size=256), **kw,
    )


_CPU_SAC = SACConfig(hidden_sizes=(128, 128), batch_size=128)
_CPU_MODEL = dataclasses.replace(
    EXPANSION_MODEL, hidden_sizes=(200, 200, 200), max_epochs=40, max_holdout=2000,
    weight_decays=(2.5e-5, 5e-5, 7.5e-5, 1e-4))
_SMALL_MODEL = dataclasses.replace(_CPU_MODEL, hidden_sizes=(64, 64), weight_decays=0.0,
                                   batch_size=32, max_epochs=100, patience=10)
_TEST_MODEL = dataclasses.replace(_CPU_MODEL, ensemble_size=3, num_elites=2,
                                  hidden_sizes=(32, 32), weight_decays=0.0, learning_rate=3e-3,
                                  batch_size=64, max_epochs=10, patience=None)
# Small networks, faster learning rates and a low initial temperature (rewards ~1 per step).
_SMALL_TASK_SAC = SACConfig(hidden_sizes=(64, 64), batch_size=128, init_alpha=0.1, actor_lr=1e-3,
                            critic_lr=1e-3, alpha_lr=1e-3)


def _cpu(**kw) -> Config:
    base = dict(num_epochs=20, steps_per_epoch=1000, init_random_steps=1000, updates_per_step=1,
                num_eval_episodes=4, sac=_CPU_SAC,
                expansion=ExpansionConfig(model=_CPU_MODEL, model_train_every=250))
    base.update(kw)
    return Config(**base)


def _point_mass(**kw) -> Config:
    """MBPO's point_mass budget (100-step epochs, 10 updates per step) without the model."""
    base = dict(num_epochs=6, steps_per_epoch=100, init_random_steps=200, updates_per_step=10,
                num_eval_episodes=4, sac=_SMALL_TASK_SAC,
                expansion=ExpansionConfig(model=_SMALL_MODEL, model_train_every=50))
    base.update(kw)
    return Config(**base)


def _test(**kw) -> Config:
    base = dict(num_epochs=3, steps_per_epoch=100, init_random_steps=100, updates_per_step=2,
                num_eval_episodes=2, sac=SACConfig(hidden_sizes=(32, 32), batch_size=64),
                expansion=ExpansionConfig(model=_TEST_MODEL, model_train_every=50))
    base.update(kw)
    return Config(**base)


PRESETS: dict[str, dict[str, Config]] = {
    "paper": {
        # Budgets (thousands of env steps) of the paper's learning curves.
        "brax/hopper": _paper(1000),
        "brax/walker2d": _paper(3000),
        "brax/halfcheetah": _paper(3000),
        "brax/ant": _paper(3000),
    },
    "cpu": {
        "point_mass": _point_mass(num_epochs=10),
        "brax/inverted_pendulum": _cpu(num_epochs=20, steps_per_epoch=250,
                                       init_random_steps=500, updates_per_step=10),
    },
    "test": {
        "point_mass": _point_mass(),
    },
}

def choose(algorithm: str, presets: dict[str, dict[str, Any]],
           generic: dict[str, Callable[[], Any]], env: str, name: str) -> Any:
    """`presets[name][env]`, else `generic[name]()`, with `env` set; ValueError naming the
    allowed preset names for an unknown `name`. (The lookup every algorithm's `preset` does.)"""
    if name not in presets:
        raise ValueError(f"unknown {algorithm} preset {name!r}; allowed: {sorted(presets)}")
    config = presets[name].get(env) or generic[name]()
    return dataclasses.replace(config, env=env)


def preset(env: str, name: str = "cpu") -> Config:
    """The preset `name` for `env` (generic settings of `name` where env has no entry)."""
    return choose("SAC", PRESETS, {"paper": _paper, "cpu": _cpu, "test": _test}, env, name)
