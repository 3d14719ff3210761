"""Guided policy search configuration (Levine & Abbeel 2014; Levine et al. 2016)."""

from __future__ import annotations

import dataclasses

from mbjax import validation
from mbjax.agents.program import ON_NONFINITE


@dataclasses.dataclass(frozen=True)
class Config:
    """GPS with per-step linear-Gaussian dynamics, KL-bounded LQR controllers and a neural policy
    trained by supervised regression onto them (see `mbjax.agents.gps`).

    env: an mbjax env with known task functions (`mbjax.envs.task_fns`) and vector observations;
      the observation is the state x of the linear-Gaussian models.
    iterations: GPS iterations (one = num_rollouts rollouts + fit + update + regression).
    num_rollouts: N rollouts of the current controller per iteration (vmapped).
    episode_length: T, the controllers' horizon and the rollouts' length (None: the env's).
    init_action_std: the first controller's noise (zero gains, zero mean).
    kl_step: epsilon at step multiplier 1, the bound on the mean per-step KL between successive
      controllers. min_step_mult / max_step_mult: the range of the adapted multiplier
      (Levine & Abbeel's step-size rule; epsilon = kl_step x multiplier).
    prior_strength: pseudo-samples (m = n0) of the normal-inverse-Wishart prior from the global
      Gaussian fit of all transitions. dynamics_regularization: added to the [x; u] block.
    state_cost / action_cost: weights of 1/2 |x|^2 and 1/2 |u|^2 added to -reward as the GPS
      cost (a survival reward such as cartpole_balance's constant 1 has no curvature: the
      quadratic term is what the LQR sees there).
    eta_min / eta_max / eta_tolerance / eta_iterations: the bracket of the dual variable, the
      relative tolerance on the KL and the cap on solves of the eta search.
    policy_hidden_sizes / policy_learning_rate / policy_steps: the neural policy (ReLU MLP,
      Adam, full-batch steps per iteration on the iteration's samples).
    eval_episodes: episodes of the neural policy's mean action per iteration (its return is
      the record's `episode_return`).
    kl_step, prior_strength, state_cost, action_cost and policy_learning_rate are float32 leaves
    of the run state (grid axes of `experiments.sweep --grid.kl_step=...`).
    """

    env: str = "cartpole_balance"
    iterations: int = 10
    num_rollouts: int = 5
    episode_length: int | None = None
    init_action_std: float = 0.5
    kl_step: float = 0.2
    min_step_mult: float = 0.01
    max_step_mult: float = 10.0
    prior_strength: float = 1.0
    dynamics_regularization: float = 1e-6
    state_cost: float = 1.0
    action_cost: float = 0.01
    eta_min: float = 1e-10
    eta_max: float = 1e10
    eta_tolerance: float = 0.02
    eta_iterations: int = 60
    policy_hidden_sizes: tuple[int, ...] = (64, 64)
    policy_learning_rate: float = 1e-3
    policy_steps: int = 200
    eval_episodes: int = 5
    on_nonfinite: str = "raise"

    def __post_init__(self) -> None:
        for name in ("iterations", "num_rollouts", "eta_iterations", "policy_steps",
                     "eval_episodes"):
            validation.field_int(self, name)
        validation.field_optional_int(self, "episode_length")
        for name in ("init_action_std", "kl_step", "min_step_mult", "prior_strength",
                     "policy_learning_rate", "eta_min", "eta_tolerance"):
            validation.field_float(self, name, 0.0, lo_open=True)
        validation.field_float(self, "max_step_mult", self.min_step_mult)
        validation.field_float(self, "eta_max", self.eta_min, lo_open=True)
        for name in ("dynamics_regularization", "state_cost", "action_cost"):
            validation.field_float(self, name, 0.0)
        validation.field_int_tuple(self, "policy_hidden_sizes")
        validation.field_choice(self, "on_nonfinite", ON_NONFINITE)
