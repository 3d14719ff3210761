"""SAC configuration: the learner (`SACConfig`) and the SAC-alone training run (`Config`)."""

from __future__ import annotations

import dataclasses

from mbjax import validation
from mbjax.agents.program import ON_NONFINITE
from mbjax.models import EnsembleConfig

VALUE_EXPANSIONS = ("none", "mve", "steve")

# The value-expansion model: STEVE's four members (all used as elites), MBPO's 4 x 200 swish
# networks with reward and termination heads.
EXPANSION_MODEL = EnsembleConfig(
    ensemble_size=4, num_elites=4, hidden_sizes=(200, 200, 200, 200), predict_reward=True,
    predict_termination=True, learning_rate=1e-3, batch_size=256, holdout_ratio=0.2,
    max_holdout=5000, max_epochs=200, patience=5,
    weight_decays=(2.5e-5, 5e-5, 7.5e-5, 7.5e-5, 1e-4),
)


@dataclasses.dataclass(frozen=True)
class SACConfig:
    """Soft actor-critic (Haarnoja et al. 2018) with twin critics and a learned temperature.

    Structural fields (network sizes, number of critics, batch size, observation normalisation) are
    static. The numeric fields (learning rates, discount, tau, reward scale, target entropy) are
    only the *initial* values: `make_sac(...).init` copies them into the state as array leaves, so a
    sweep can vmap over them without recompiling.
    """

    hidden_sizes: tuple[int, ...] = (256, 256)
    num_critics: int = 2
    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    alpha_lr: float = 3e-4
    discount: float = 0.99
    tau: float = 0.005
    init_alpha: float = 1.0
    target_entropy: float | None = None  # None -> -action_size
    batch_size: int = 256
    reward_scale: float = 1.0
    log_std_min: float = -5.0
    log_std_max: float = 2.0
    normalize_observations: bool = False
    # Scale of the critics' output-layer init; 0 starts every Q at exactly 0 (TD-MPC2 zero-inits
    # its Q heads), so a critic that regresses onto zero targets stays 0.
    critic_init_scale: float = 1.0

    def __post_init__(self) -> None:
        validation.field_int_tuple(self, "hidden_sizes")
        validation.field_float(self, "critic_init_scale", 0.0)
        validation.field_int(self, "num_critics")
        for name in ("actor_lr", "critic_lr", "alpha_lr", "init_alpha", "reward_scale"):
            validation.field_float(self, name, 0.0, lo_open=True)
        validation.field_float(self, "discount", 0.0, 1.0)
        validation.field_float(self, "tau", 0.0, 1.0, lo_open=True)
        if self.target_entropy is not None:
            validation.field_float(self, "target_entropy")
        validation.field_int(self, "batch_size")
        validation.field_float(self, "log_std_min")
        validation.field_float(self, "log_std_max")
        if not self.log_std_min < self.log_std_max:
            raise validation.field_error(
                self, "log_std_min", f"a number < log_std_max={self.log_std_max!r}"
            )
        validation.field_bool(self, "normalize_observations")


@dataclasses.dataclass(frozen=True)
class ExpansionConfig:
    """The model behind SAC's value expansion (`Config.value_expansion` = "mve" | "steve").

    horizon: model steps H after the real transition (MVE: Feinberg et al. 2018; STEVE: Buckman
    et al. 2018 use H = 3); model: the ensemble, refitted on all real data every
    `model_train_every` env transitions; learned_reward / learned_termination: the model's heads
    or the task's known functions (`mbjax.envs.resolve_task`); use_estimated_reward: allow a
    known reward that is only an estimate from observations.
    """

    horizon: int = 3
    model: EnsembleConfig = EXPANSION_MODEL
    model_train_every: int = 250
    learned_reward: bool = True
    learned_termination: bool = True
    use_estimated_reward: bool = False

    def __post_init__(self) -> None:
        validation.field_int(self, "horizon", lo=0)
        validation.field_int(self, "model_train_every")
        for name in ("learned_reward", "learned_termination", "use_estimated_reward"):
            validation.field_bool(self, name)
        if not isinstance(self.model, EnsembleConfig):
            raise validation.field_error(self, "model", "an EnsembleConfig")
        if self.learned_reward and not self.model.predict_reward:
            raise validation.field_error(self, "learned_reward",
                                         "True only with model.predict_reward=True")
        if self.learned_termination and not self.model.predict_termination:
            raise validation.field_error(self, "learned_termination",
                                         "True only with model.predict_termination=True")


@dataclasses.dataclass(frozen=True)
class Config:
    """SAC alone on a batch of real environments (the SAC loop MBPO adds its model to).

    Loop: `init_random_steps` uniform-random env transitions (collected in `init`), then
    `num_epochs` epochs of `steps_per_epoch` env transitions from `num_envs` parallel envs
    (auto-reset), each iteration of num_envs transitions followed by `updates_per_step *
    num_envs` SAC updates on uniform batches of the replay buffer. Each epoch ends with
    `num_eval_episodes` evaluation episodes of the deterministic policy.

    env: registry name (`mbjax.envs.names()`); episode_length: env steps per episode (None: the
    env's default); action_repeat: env steps per agent action.
    replay_capacity: real-data buffer size (None: every transition of the run).
    on_nonfinite: what the runners do with an epoch that met NaN/Inf (SAC losses, evaluation
    returns, an env's NaN in the buffer): "raise" stops with FloatingPointError, "rollback"
    restores the state from before the epoch (the PRNG key advanced) and records the event.
    value_expansion: the critics' targets: "none" (SAC's one-step targets), "mve" or "steve"
    (H-step model targets, `mbjax.agents.sac.expansion`, with the model of `expansion`).
    """

    env: str = "point_mass"
    episode_length: int | None = None
    action_repeat: int = 1
    num_epochs: int = 10
    steps_per_epoch: int = 1000
    num_envs: int = 1
    init_random_steps: int = 1000
    updates_per_step: int = 1
    num_eval_episodes: int = 5
    replay_capacity: int | None = None
    sac: SACConfig = SACConfig()
    on_nonfinite: str = "raise"
    value_expansion: str = "none"
    expansion: ExpansionConfig = ExpansionConfig()

    def __post_init__(self) -> None:
        for name in ("action_repeat", "num_epochs", "steps_per_epoch", "num_envs",
                     "updates_per_step", "num_eval_episodes"):
            validation.field_int(self, name)
        validation.field_int(self, "init_random_steps", lo=0)
        validation.field_optional_int(self, "episode_length")
        validation.field_optional_int(self, "replay_capacity")
        for name in ("init_random_steps", "steps_per_epoch"):
            if getattr(self, name) % self.num_envs:
                raise validation.field_error(self, name, f"a multiple of num_envs={self.num_envs}")
        if not isinstance(self.sac, SACConfig):
            raise validation.field_error(self, "sac", "a SACConfig")
        validation.field_choice(self, "on_nonfinite", ON_NONFINITE)
        validation.field_choice(self, "value_expansion", VALUE_EXPANSIONS)
        if not isinstance(self.expansion, ExpansionConfig):
            raise validation.field_error(self, "expansion", "an ExpansionConfig")
        if self.value_expansion != "none":
            every = self.expansion.model_train_every
            if every % self.num_envs:
                raise validation.invalid(f"{type(self).__name__}.expansion.model_train_every",
                                         every, f"a multiple of num_envs={self.num_envs}")
            if self.steps_per_epoch % every:
                raise validation.field_error(
                    self, "steps_per_epoch",
                    f"a multiple of expansion.model_train_every={every}")

    @property
    def total_env_steps(self) -> int:
        return self.init_random_steps + self.num_epochs * self.steps_per_epoch

    @property
    def capacity(self) -> int:
        """The replay buffer's size."""
        return self.replay_capacity or self.total_env_steps

