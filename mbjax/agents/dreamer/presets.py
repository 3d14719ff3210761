"""Dreamer presets.

"paper": DreamerV3 (Hafner et al. 2023, "Mastering Diverse Domains through World Models",
  Table 11 and its repository's configs.yaml, commit 29eb964: `dmc_proprio` / `dmc_vision` use
  model size12m and train ratio 512, DMC action repeat 2, 16 envs). Size12m: deter 2048,
  hidden 256, 32 stochastic categoricals of 16 classes; batch 16 sequences of 64; imagination
  horizon 15; discount 1 - 1/333, lambda 0.95; 1% unimix; free bits 1, KL dyn 1.0 / rep 0.1;
  actor entropy 3e-4, REINFORCE for every action space; return normalisation by the EMA (rate
  0.01) of the 5th-95th percentile range, limit 1; slow critic EMA 0.02, regulariser weight
  1; 255 symlog bins in [-20, 20]. DreamerV3 optimises with LaProp (lr 4e-5, eps 1e-20,
  adaptive gradient clipping 0.3); here Adam (lr 4e-5, eps 1e-8 for the model and 1e-5 for the
  actor-critic) with global-norm clipping (1000 model, 100 actor-critic), as DreamerV3's
  first preprint. Its RMSNorm is LayerNorm here. 500k env steps.
"paper_vision": the same for DMC vision (64x64 RGB, `pixels=True`, a conv encoder of depth 32),
  1M env steps.
"cpu": a small model for a shared 2-core CPU: deter 128, hidden 64, 8 x 8 latents, one-layer
  model heads; batch 16 x 32; train ratio 204.8 (two updates per 5 agent steps); imagination
  from 128 of the batch's 512 posterior states; Adam 3e-4 for the model, 1e-4 for the actor
  and 1e-3 for the critic; REINFORCE actor gradients (as DreamerV3); 4 evaluation episodes per
  iteration. 50k env steps with action repeat 2 (100k for dmc/CartpoleSwingup).
  Why the critic's rate is 25x DreamerV3's: with ~10x fewer updates per env step and 8x fewer
  imagined starts per update, the value (bootstrapped 15 imagined steps at a time, held back by
  the slow-critic regulariser) otherwise stays far below the returns: on dmc/CartpoleBalance
  at 1e-4 it reached 3 after 18k env steps where the discounted return is ~150, and the actor
  then optimised a 15-step (0.3 s) horizon. Backpropagating returns through the dynamics
  (`actor_grad="dynamics"`) learned less than REINFORCE here (imagined reward flat, ~380 at 50k).
  Train ratio 204.8 rather than 102.4: at 102.4 the value still lagged and 3 seeds were at
  313-410 after 26k env steps; at 204.8 the 3 seeds (vmapped) ended at 975 / 485 / 848
  after 50k env steps (benchmarks/results/dreamer_cartpole_balance.json).
"test": tiny sizes, a few iterations (seconds).
"""

from __future__ import annotations

import dataclasses

from mbjax import envs
from mbjax.agents.dreamer.config import Config
from mbjax.agents.sac.presets import choose
from mbjax.envs.discrete import is_discrete
from mbjax.models.rssm import RSSMConfig

_PAPER_MODEL = RSSMConfig(deter=2048, hidden=256, stoch=32, classes=16, layers=2,
                          learning_rate=4e-5, kl_dyn_scale=1.0, kl_rep_scale=0.1, free_bits=1.0,
                          batch_size=16, seq_len=64)


def _paper(env_steps: int = 500_000, **kw) -> Config:
    """DreamerV3 DMC proprio: 16 envs, train ratio 512, repeat 2; `env_steps` in all."""
    agent_steps = env_steps // (2 * 16)  # per env
    base = dict(action_repeat=2, num_envs=16, init_random_steps=64,
                steps_per_iteration=1000, iterations=max(agent_steps // 1000, 1),
                train_every=2, train_ratio=512.0, model=_PAPER_MODEL, hidden=256, layers=2,
                actor_lr=4e-5, critic_lr=4e-5, num_eval_episodes=4)
    base.update(kw)
    return Config(**base)


def _paper_vision(**kw) -> Config:
    model = dataclasses.replace(_PAPER_MODEL, encoder="conv", depth=32, image_size=64)
    return _paper(1_000_000, pixels=True, model=model, **kw)


_CPU_MODEL = RSSMConfig(deter=128, hidden=64, stoch=8, classes=8, layers=1,
                        learning_rate=3e-4, kl_dyn_scale=1.0, kl_rep_scale=0.1,
                        batch_size=16, seq_len=32)


def _cpu(env_steps: int = 50_000, action_repeat: int = 2, **kw) -> Config:
    """One env; 500-agent-step iterations; 1000 random agent steps first."""
    agent_steps = env_steps // action_repeat
    base = dict(action_repeat=action_repeat, num_envs=1, init_random_steps=1000,
                steps_per_iteration=500, iterations=max((agent_steps - 1000) // 500, 1),
                train_every=5, train_ratio=204.8, model=_CPU_MODEL, hidden=64, layers=2,
                imagine_starts=128, actor_lr=1e-4, critic_lr=1e-3, actor_grad="reinforce",
                num_eval_episodes=4)
    base.update(kw)
    return Config(**base)


_TEST_MODEL = RSSMConfig(deter=16, hidden=16, stoch=4, classes=4, layers=1, batch_size=4,
                         seq_len=8, bins=31, learning_rate=1e-3)


def _test(**kw) -> Config:
    base = dict(action_repeat=1, episode_length=40, num_envs=1, init_random_steps=24,
                steps_per_iteration=8, iterations=3, train_every=4, train_ratio=8.0,
                model=_TEST_MODEL, hidden=16, layers=1, horizon=4, actor_lr=1e-3,
                critic_lr=1e-3, num_eval_episodes=1)
    base.update(kw)
    return Config(**base)


PRESETS: dict[str, dict[str, Config]] = {
    "paper": {"dmc/CartpoleSwingup": _paper(), "dmc/CartpoleBalance": _paper()},
    "cpu": {"dmc/CartpoleBalance": _cpu(50_000), "dmc/CartpoleSwingup": _cpu(100_000)},
    "paper_vision": {},
    "test": {},
}


def _adapt(config: Config) -> Config:
    """Discrete-action tasks (`mbjax.envs.discrete`): no action repeat, REINFORCE."""
    if config.env.startswith(("dmc/", "brax/")):
        return config
    try:
        discrete = is_discrete(envs.make(config.env))
    except ValueError:
        return config  # an unknown env: make_program reports it
    if not discrete:
        return config
    return dataclasses.replace(config, action_repeat=1, actor_grad="reinforce")


def preset(env: str, name: str = "cpu") -> Config:
    """The preset `name` for `env` (generic settings of `name` where env has no entry)."""
    generic = {"paper": _paper, "paper_vision": _paper_vision, "cpu": _cpu, "test": _test}
    return _adapt(choose("dreamer", PRESETS, generic, env, name))
