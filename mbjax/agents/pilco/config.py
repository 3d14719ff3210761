"""PILCO configuration (Deisenroth & Rasmussen 2011, "PILCO: A Model-Based and Data-Efficient
Approach to Policy Search")."""

from __future__ import annotations

import dataclasses

from mbjax import validation
from mbjax.agents.pilco.policy import POLICIES
from mbjax.agents.program import ON_NONFINITE
from mbjax.models.gp import GPConfig

PRECISIONS = ("float64", "float32")


@dataclasses.dataclass(frozen=True)
class Config:
    """PILCO on an env with a `TaskSpec` (`mbjax.agents.pilco.tasks.TASKS`).

    env / episode_length (wrapped-env steps; None: the env's) / action_repeat: the task. The
      default is mbjax's `cartpole_swingup` (dt 0.04 s) with action_repeat 3, i.e. PILCO's
      control period of ~0.1 s (0.12 s), 67 agent steps per 200-step episode.
    episodes: iterations; each collects one episode, then refits the GP and optimises the
      policy. The first `random_episodes` act uniformly at random (PILCO: one random rollout).
    horizon: agent steps of the moment-matched prediction the policy is optimised over.
    policy: "rbf" (num_basis Gaussian basis functions) or "linear", squashed by the sin
      saturation onto [-1, 1]. centre_spread: std of the RBF centres around the mean start
      features (the toolbox draws them with identity covariance: 1.0).
    policy_steps / policy_learning_rate: Adam steps on the expected long-term cost per episode
      (warm-started from the last policy; the best iterate is kept). policy_learning_rate is a
      float32 leaf of the run state (a grid axis); 0.01: on four fitted GPs of cart-pole runs
      (early and late, seeds 0 and 2) 250 steps at 0.01 reached a lower predicted cost than at
      0.05, 0.003 or a cosine decay from 0.05; at 0.05 a refined policy often kept its start
      (every iterate was worse).
    cost_width: width of the saturating cost (PILCO toolbox: 0.25).
    gp: the GP dynamics model (`mbjax.models.gp.GPConfig`).
    precision: "float64" (default; each iteration computes in double precision, as the PILCO
      toolbox does: in float32 the moment-matched covariance E[f f^T] - m m^T cancels once the
      GP weights grow, goes indefinite and the expected cost turns non-finite) or "float32".
    """

    env: str = "cartpole_swingup"
    episode_length: int | None = None
    action_repeat: int = 3
    episodes: int = 15
    random_episodes: int = 1
    horizon: int = 40
    policy: str = "rbf"
    num_basis: int = 50
    centre_spread: float = 1.0
    policy_steps: int = 100
    policy_learning_rate: float = 0.01
    cost_width: float = 0.25
    gp: GPConfig = GPConfig(max_points=150, fit_steps=100, max_snr=300.0)
    precision: str = "float64"
    on_nonfinite: str = "raise"

    def __post_init__(self) -> None:
        validation.field_optional_int(self, "episode_length")
        validation.field_int(self, "action_repeat")
        validation.field_int(self, "episodes")
        validation.field_int(self, "random_episodes", lo=1, hi=self.episodes
                             if validation.is_int(self.episodes) else None)
        validation.field_int(self, "horizon")
        validation.field_choice(self, "policy", POLICIES)
        validation.field_int(self, "num_basis")
        validation.field_float(self, "centre_spread", 0.0, lo_open=True)
        validation.field_int(self, "policy_steps", lo=0)
        validation.field_float(self, "policy_learning_rate", 0.0, lo_open=True)
        validation.field_float(self, "cost_width", 0.0, lo_open=True)
        if not isinstance(self.gp, GPConfig):
            raise validation.field_error(self, "gp", "a GPConfig")
        validation.field_choice(self, "precision", PRECISIONS)
        validation.field_choice(self, "on_nonfinite", ON_NONFINITE)
