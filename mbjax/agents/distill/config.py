"""Policy distillation configuration (`--algo=distill`)."""

from __future__ import annotations

import dataclasses

from mbjax import validation
from mbjax.agents.program import ON_NONFINITE


@dataclasses.dataclass(frozen=True)
class Config:
    """DAgger (Ross, Gordon and Bagnell 2011) from a trained run's policy (the teacher, e.g.
    PETS's MPC) into an MLP policy (the student) that acts with one small forward pass.

    teacher_run: the run directory of the teacher (`mbjax.load_policy`; its env must be `env`).
    Iteration i collects `episodes_per_iteration` episodes (vmapped) in which each step executes
    the teacher's action with probability beta_i = beta_decay ** i (i = 0: the teacher alone)
    and the student's otherwise, labels every visited state with the teacher's action,
    aggregates them into one dataset, then takes `train_steps` Adam steps of mean squared error
    on minibatches of `batch_size` from all of it; the student's deterministic return over
    `num_eval_episodes` episodes is the record's `episode_return`.
    env / episode_length / action_repeat: as for every learner.
    """

    env: str = "cartpole_swingup"
    teacher_run: str = ""
    episode_length: int | None = None
    action_repeat: int = 1
    iterations: int = 8
    episodes_per_iteration: int = 2
    beta_decay: float = 0.5
    hidden_sizes: tuple[int, ...] = (64, 64)
    learning_rate: float = 1e-3
    batch_size: int = 256
    train_steps: int = 1000
    num_eval_episodes: int = 4
    on_nonfinite: str = "raise"

    def __post_init__(self) -> None:
        if not isinstance(self.teacher_run, str):
            raise validation.field_error(self, "teacher_run", "a run directory path")
        validation.field_optional_int(self, "episode_length")
        for name in ("action_repeat", "iterations", "episodes_per_iteration", "batch_size",
                     "train_steps", "num_eval_episodes"):
            validation.field_int(self, name)
        validation.field_float(self, "beta_decay", 0.0, 1.0)
        validation.field_int_tuple(self, "hidden_sizes")
        validation.field_float(self, "learning_rate", 0.0, lo_open=True)
        validation.field_choice(self, "on_nonfinite", ON_NONFINITE)
