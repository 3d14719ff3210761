"""PILCO presets. "paper": the PILCO toolbox's cart-pole settings (settings_cp.m: 100 RBF basis
functions, cost width 0.25, one random rollout then 15 policy searches, FITC above ~300 points)
on mbjax's cartpole_swingup at a 0.12 s control period (action_repeat 3; the toolbox uses
0.1 s), the prediction horizon covering the 67-step episode, 300 Adam steps per policy search
(the toolbox: 150 BFGS line searches).
"cpu": 50 basis functions, a 40-step (4.8 s) horizon, 250 Adam steps per episode, the
toolbox's cost width 0.25, 15 episodes in all, 250 GP support points (FITC inducing inputs
once the data exceed them; the moment-matching cost grows with the square of the support).
Single-seed runs (float64, greedy inducing inputs, episodes counted from 1 = random):
- width 0.42 (the env reward's), 150 points: seed 0 best 142 in 15 episodes (it swings up,
  then the pole falls over in the env while it balances in the model); seed 2 reached 165 at
  episode 10 and fell back to 23-35 in episodes 13-15 as the FITC fit degraded with the data
  (training MSE ~1e-2);
- width 0.42, 250 points: seed 0 best 116 in 12 episodes; a 67-step horizon: 41 by episode 6;
- width 0.25, 150 points: seed 0 177 at episode 5, but its predicted cost jumped from 9 to 28
  at episode 9 (training MSE 7e-3);
- width 0.25, 250 points (this preset): seed 0 159 at episode 6 and 167 at 10; seed 2 169 at
  episode 7 and 179 at 10 (predicted and real cost within 1-2 of each other).
Adam rather than the toolbox's BFGS: on the GP of the random episode, 50 iterations of
optax.lbfgs (zoom line search, float32) reached a predicted cost of 36.0 of 40 in twice the
time 100 Adam steps took to reach 34.8; 300 Adam steps reached 30.8. "test": a handful of
steps."""

from __future__ import annotations

from mbjax.agents.pilco.config import Config
from mbjax.agents.sac.presets import choose
from mbjax.models.gp import GPConfig

PRESETS: dict[str, dict[str, Config]] = {"paper": {}, "cpu": {}, "test": {}}


def _paper() -> Config:
    return Config(episodes=16, horizon=67, num_basis=100, policy_steps=300,
                  gp=GPConfig(max_points=300, fit_steps=150, max_snr=300.0))


def _cpu() -> Config:
    return Config(policy_steps=250, gp=GPConfig(max_points=250, fit_steps=100, max_snr=300.0))


def _test() -> Config:
    return Config(episode_length=30, episodes=2, horizon=5, num_basis=5, policy_steps=3,
                  gp=GPConfig(max_points=12, fit_steps=3))


def preset(env: str, name: str = "cpu") -> Config:
    """The preset `name` for `env` (every env PILCO supports shares the settings)."""
    return choose("pilco", PRESETS, {"paper": _paper, "cpu": _cpu, "test": _test}, env, name)
