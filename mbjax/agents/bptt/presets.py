"""BPTT / SVG presets: published-scale settings, CPU-sized ones, tiny ones for the tests.

`preset(env, name)` returns a Config; names: "paper" (SVG(inf), Heess et al. 2015, "Learning
Continuous Control Policies by Stochastic Value Gradients": the policy's gradient through whole
imagined trajectories of a learned model, clipped; here a PETS-sized 5-member ensemble, 2 x 256
policy, 50-step horizons), "cpu" (learns in minutes on 2 cores), "test" (seconds).
`pendulum_swingup` has entries with its known reward. Envs without an entry get the generic
settings of `name`.
"""

from __future__ import annotations

import dataclasses

from mbjax.agents.bptt.config import DEFAULT_MODEL, Config
from mbjax.agents.sac.presets import choose
from mbjax.models import EnsembleConfig

_TEST_MODEL = EnsembleConfig(
    ensemble_size=3, num_elites=2, hidden_sizes=(16, 16), predict_reward=True,
    predict_termination=True, learning_rate=3e-3, batch_size=32, max_epochs=5, patience=None,
)


def _paper(**kw) -> Config:
    base = dict(num_epochs=100, steps_per_epoch=1000, init_random_steps=1000,
                model_train_every=250, updates_per_step=1, horizon=50, num_starts=512,
                hidden_sizes=(256, 256), learned_reward=True, learned_termination=True,
                model=DEFAULT_MODEL)
    base.update(kw)
    return Config(**base)


def _cpu(**kw) -> Config:
    base = dict(num_epochs=10, steps_per_epoch=200, init_random_steps=200,
                model_train_every=200, updates_per_step=1, horizon=30, num_starts=256,
                learned_reward=True, learned_termination=True,
                model=dataclasses.replace(DEFAULT_MODEL, hidden_sizes=(64, 64), max_epochs=30))
    base.update(kw)
    return Config(**base)


def _test(**kw) -> Config:
    base = dict(num_epochs=2, steps_per_epoch=40, init_random_steps=40, model_train_every=40,
                updates_per_step=1, horizon=5, num_starts=16, hidden_sizes=(16, 16),
                num_eval_episodes=2, episode_length=40, learned_reward=True,
                learned_termination=True, model=_TEST_MODEL)
    base.update(kw)
    return Config(**base)


# pendulum_swingup: the known (exact) reward, no termination.
_PENDULUM = dict(learned_reward=False, learned_termination=False)

PRESETS: dict[str, dict[str, Config]] = {
    "paper": {"pendulum_swingup": _paper(**_PENDULUM)},
    # A 40-step horizon (2 s) sees a whole swing-up from the bottom (30 steps: measured to
    # learn it 3 epochs later); 64 starts per update are enough.
    "cpu": {"pendulum_swingup": _cpu(horizon=40, num_starts=64, **_PENDULUM)},
    "test": {"pendulum_swingup": _test(**_PENDULUM)},
}


def preset(env: str, name: str = "cpu") -> Config:
    """The preset `name` for `env` (generic settings of `name` where env has no entry)."""
    return choose("BPTT", PRESETS, {"paper": _paper, "cpu": _cpu, "test": _test}, env, name)
