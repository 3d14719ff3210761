"""MBPO presets: the paper's settings, CPU-sized ones that finish in minutes on 2 cores, tiny ones.

`preset(env, name)` returns a Config; names: "paper" ("When to trust your model", Janner et
al. 2019: 7 members / 5 elites of 4 x 200 swish, 5% real data, refit every 250 steps with a
20% holdout, 400 rollouts started per env step, SAC 256 x 2, 5000 random steps first; rollout
schedule, SAC updates per step and budget per task), "cpu" (same loop, smaller networks, fewer
rollouts and updates), "test" (tiny, for the test suite). Envs without an entry get the generic
settings of `name`. `sac_alone(config)` is the `mbjax.agents.sac.Config` of SAC alone on the
same budget.
"""

from __future__ import annotations

import dataclasses

from mbjax.agents import sac
from mbjax.agents.mbpo.config import DEFAULT_MODEL, Config
from mbjax.agents.sac import SACConfig
from mbjax.agents.sac.presets import choose
from mbjax.models import EnsembleConfig


def _paper(schedule, updates: int, epochs: int, steps_per_epoch: int = 1000, **kw) -> Config:
    return Config(
        num_epochs=epochs, steps_per_epoch=steps_per_epoch, init_random_steps=5000,
        model_train_every=250, rollout_batch_size=100_000, rollout_schedule=schedule,
        real_ratio=0.05, updates_per_step=updates, model=DEFAULT_MODEL,
        sac=SACConfig(hidden_sizes=(256, 256), batch_size=256), **kw,
    )


_CPU_MODEL = EnsembleConfig(
    ensemble_size=5, num_elites=3, hidden_sizes=(200, 200, 200), predict_reward=True,
    predict_termination=True, learning_rate=1e-3, batch_size=256, max_epochs=40, patience=5,
    weight_decays=(2.5e-5, 5e-5, 7.5e-5, 1e-4), max_holdout=2000,
)
_CPU_SAC = SACConfig(hidden_sizes=(128, 128), batch_size=128)


def _cpu(schedule=(1, 15, 1, 1), updates: int = 10, epochs: int = 20, **kw) -> Config:
    """MBPO's loop at CPU size: 5 x 3x200 ensemble (3 elites), 30 rollouts per env step,
    SAC 128 x 2 on batches of 128, 250-step epochs."""
    base = dict(
        num_epochs=epochs, steps_per_epoch=250, init_random_steps=1000, model_train_every=250,
        rollout_batch_size=7500, rollout_schedule=schedule, real_ratio=0.05,
        updates_per_step=updates, num_eval_episodes=4, model=_CPU_MODEL, sac=_CPU_SAC,
    )
    base.update(kw)
    return Config(**base)


def _point_mass(**kw) -> Config:
    """Small nets and a small model batch (few hundred transitions), faster SAC learning rates and
    a low initial temperature (rewards are ~1 per step)."""
    base = dict(
        num_epochs=6, steps_per_epoch=100, init_random_steps=200, model_train_every=50,
        rollout_batch_size=600, rollout_schedule=(1, 4, 1, 5), real_ratio=0.05,
        updates_per_step=10, num_eval_episodes=4,
        model=dataclasses.replace(
            _CPU_MODEL, hidden_sizes=(64, 64), weight_decays=0.0, batch_size=32, max_epochs=100,
            patience=10,
        ),
        sac=SACConfig(hidden_sizes=(64, 64), batch_size=128, init_alpha=0.1, actor_lr=1e-3,
                      critic_lr=1e-3, alpha_lr=1e-3),
    )
    base.update(kw)
    return Config(**base)


def _test(**kw) -> Config:
    base = dict(
        num_epochs=3, steps_per_epoch=100, init_random_steps=100, model_train_every=50,
        rollout_batch_size=256, rollout_schedule=(1, 3, 1, 3), real_ratio=0.1,
        updates_per_step=2, num_eval_episodes=2,
        model=EnsembleConfig(
            ensemble_size=3, num_elites=2, hidden_sizes=(32, 32), predict_reward=True,
            predict_termination=True, learning_rate=3e-3, batch_size=64, max_epochs=10,
            patience=None,
        ),
        sac=SACConfig(hidden_sizes=(32, 32), batch_size=64),
    )
    base.update(kw)
    return Config(**base)


PRESETS: dict[str, dict[str, Config]] = {
    "paper": {
        # Janner et al. 2019, appendix C: rollout schedule, SAC updates per env step, epochs.
        "brax/hopper": _paper((20, 150, 1, 15), 20, 125),
        "brax/walker2d": _paper((20, 150, 1, 1), 20, 300),
        "brax/halfcheetah": _paper((20, 150, 1, 1), 40, 400),
        "brax/ant": _paper((20, 100, 1, 25), 20, 300),
        "brax/inverted_pendulum": _paper((1, 15, 1, 1), 10, 80, steps_per_epoch=250),
        # No published MBPO run on DM Control: HalfCheetah's settings (closest task).
        "dmc/CheetahRun": _paper((20, 150, 1, 1), 40, 400),
    },
    "cpu": {
        "point_mass": _point_mass(num_epochs=10),
        "brax/inverted_pendulum": _cpu(schedule=(1, 15, 1, 1), updates=10, epochs=20,
                                       init_random_steps=500),
        "brax/hopper": _cpu(schedule=(4, 30, 1, 5), updates=10, epochs=40),
        "dmc/CheetahRun": _cpu(schedule=(4, 30, 1, 1), updates=10, epochs=40),
    },
    "test": {
        "point_mass": _point_mass(),
    },
}


def preset(env: str, name: str = "cpu") -> Config:
    """The preset `name` for `env` (generic settings of `name` where env has no entry)."""
    generic = {"paper": lambda: _paper((20, 100, 1, 1), 20, 100), "cpu": _cpu, "test": _test}
    config = choose("MBPO", PRESETS, generic, env, name)
    # MBPO never expands values, but `sac_alone(config)` is SAC's preset of the same name.
    return dataclasses.replace(config, expansion=sac.preset(env, name).expansion)


def sac_alone(config: Config) -> sac.Config:
    """SAC alone with the same env, budget, loop and SAC settings (no model, real data only):
    the `sac.Config` part of an MBPO Config."""
    return sac.Config(**{f.name: getattr(config, f.name) for f in dataclasses.fields(sac.Config)})
