"""BPTT / SVG configuration, validated on construction (`mbjax.validation`)."""

from __future__ import annotations

import dataclasses

from mbjax import validation
from mbjax.agents.program import ON_NONFINITE
from mbjax.models import EnsembleConfig

DYNAMICS = ("ensemble", "true")
VALUES = ("none", "svg1")
POLICIES = ("gaussian", "deterministic")

# A PETS-sized probabilistic ensemble with learned reward and termination heads.
DEFAULT_MODEL = EnsembleConfig(
    ensemble_size=5, num_elites=5, hidden_sizes=(200, 200, 200), predict_reward=True,
    predict_termination=True, learning_rate=1e-3, batch_size=256, holdout_ratio=0.2,
    max_holdout=2000, max_epochs=50, patience=5,
)


@dataclasses.dataclass(frozen=True)
class Config:
    """Backpropagation through time (SVG(inf)) or SVG(1) with a learned model or the true env.

    Loop: `init_random_steps` uniform-random env transitions (in `init`), then `num_epochs`
    epochs of `steps_per_epoch` transitions from `num_envs` envs (auto-reset). Every
    `model_train_every` transitions the model is refitted on all real data; after every
    iteration of num_envs transitions the policy takes `updates_per_step * num_envs` gradient
    steps, each on `num_starts` start states drawn from the replay buffer: the gradient of the
    mean discounted imagined return over `horizon` model steps (value='none', SVG(inf)) or of
    one model step plus gamma * V(s_1) (value='svg1', horizon must be 1), clipped to global norm
    `max_grad_norm`. Each epoch ends with `num_eval_episodes` episodes of the mean action.

    dynamics: 'ensemble' (learned, `model`) or 'true' (the task's exact differentiable physics,
    own pure-JAX tasks only; nothing is fitted). policy: 'gaussian' (tanh-Gaussian,
    reparameterised: its samples act and imagine) or 'deterministic' (tanh of the mean; acts with
    Gaussian noise of std `exploration_std`). value_lr / tau: SVG(1)'s critic, trained by TD(0)
    on the policy's imagined first step against a Polyak-averaged target.
    learned_reward / learned_termination / use_estimated_reward: as MBPO (the model's heads or
    the task's known functions, `mbjax.envs.resolve_task`); ignored with dynamics='true'.
    """

    env: str = "pendulum_swingup"
    episode_length: int | None = None
    action_repeat: int = 1
    num_epochs: int = 10
    steps_per_epoch: int = 200
    num_envs: int = 1
    init_random_steps: int = 200
    updates_per_step: int = 1
    model_train_every: int = 200
    num_eval_episodes: int = 4
    replay_capacity: int | None = None
    dynamics: str = "ensemble"
    value: str = "none"
    policy: str = "deterministic"
    horizon: int = 30
    num_starts: int = 256
    discount: float = 0.99
    hidden_sizes: tuple[int, ...] = (64, 64)
    policy_lr: float = 1e-3
    value_lr: float = 1e-3
    max_grad_norm: float = 10.0
    exploration_std: float = 0.3
    tau: float = 0.01
    learned_reward: bool = False
    learned_termination: bool = False
    use_estimated_reward: bool = False
    model: EnsembleConfig = DEFAULT_MODEL
    on_nonfinite: str = "raise"

    def __post_init__(self) -> None:
        for name in ("action_repeat", "num_epochs", "steps_per_epoch", "num_envs",
                     "updates_per_step", "model_train_every", "num_eval_episodes", "horizon",
                     "num_starts"):
            validation.field_int(self, name)
        validation.field_int(self, "init_random_steps", lo=0)
        validation.field_optional_int(self, "episode_length")
        validation.field_optional_int(self, "replay_capacity")
        validation.field_choice(self, "dynamics", DYNAMICS)
        validation.field_choice(self, "value", VALUES)
        validation.field_choice(self, "policy", POLICIES)
        validation.field_int_tuple(self, "hidden_sizes")
        validation.field_float(self, "discount", 0.0, 1.0)
        for name in ("policy_lr", "value_lr", "max_grad_norm"):
            validation.field_float(self, name, 0.0, lo_open=True)
        validation.field_float(self, "exploration_std", 0.0)
        validation.field_float(self, "tau", 0.0, 1.0, lo_open=True)
        for name in ("learned_reward", "learned_termination", "use_estimated_reward"):
            validation.field_bool(self, name)
        if not isinstance(self.model, EnsembleConfig):
            raise validation.field_error(self, "model", "an EnsembleConfig")
        validation.field_choice(self, "on_nonfinite", ON_NONFINITE)
        self._check_relations()

    def _check_relations(self) -> None:
        multiples = (("init_random_steps", "num_envs"), ("model_train_every", "num_envs"),
                     ("steps_per_epoch", "model_train_every"))
        for name, of in multiples:
            if getattr(self, name) % getattr(self, of):
                raise validation.field_error(self, name, f"a multiple of {of}={getattr(self, of)}")
        if self.value == "svg1" and self.horizon != 1:
            raise validation.field_error(self, "horizon", "1 with value='svg1' (SVG(1) takes one "
                                         "model step, then the learned value)")
        if self.dynamics == "ensemble":
            for flag, head in (("learned_reward", "predict_reward"),
                               ("learned_termination", "predict_termination")):
                if getattr(self, flag) and not getattr(self.model, head):
                    raise validation.field_error(self, flag, f"True only with model.{head}=True")
        if self.dynamics == "true" and self.action_repeat != 1:
            raise validation.field_error(self, "action_repeat", "1 with dynamics='true'")

    @property
    def total_env_steps(self) -> int:
        return self.init_random_steps + self.num_epochs * self.steps_per_epoch

    @property
    def capacity(self) -> int:
        """The replay buffer's size."""
        return self.replay_capacity or self.total_env_steps

    @property
    def blocks_per_epoch(self) -> int:
        """Model refits per epoch."""
        return self.steps_per_epoch // self.model_train_every
