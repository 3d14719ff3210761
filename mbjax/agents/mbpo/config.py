"""MBPO configuration: SAC alone's Config plus the model's fields, validated on construction."""

from __future__ import annotations

import dataclasses
import math

from mbjax import validation
from mbjax.agents import sac
from mbjax.models import EnsembleConfig

# MBPO's model: 7 members, 5 elites, 4 x 200 swish, learned reward and termination heads.
DEFAULT_MODEL = EnsembleConfig(
    ensemble_size=7, num_elites=5, hidden_sizes=(200, 200, 200, 200), predict_reward=True,
    predict_termination=True, learning_rate=1e-3, batch_size=256, holdout_ratio=0.2,
    max_holdout=5000, max_epochs=200, patience=5,
    weight_decays=(2.5e-5, 5e-5, 7.5e-5, 7.5e-5, 1e-4),
)


@dataclasses.dataclass(frozen=True)
class Config(sac.Config):
    """MBPO (Janner et al. 2019): short model rollouts branched from real states feed SAC.

    MBPO's run is SAC alone's (`mbjax.agents.sac.Config`, whose fields it has: env,
    episode_length, action_repeat, num_epochs, steps_per_epoch, num_envs, init_random_steps,
    updates_per_step, num_eval_episodes, replay_capacity, sac) plus a model;
    `mbpo.sac_alone(config)` is the same run without it.

    Loop: `init_random_steps` uniform-random env transitions (collected in `init`), then
    `num_epochs` epochs of `steps_per_epoch` env transitions from `num_envs` parallel envs
    (auto-reset). Every `model_train_every` transitions the ensemble is refitted on all real data
    (holdout, elites, early stopping) and `rollout_batch_size` model rollouts start from real
    states, each `rollout_length(epoch)` steps long (`rollout_schedule` = [epoch_a, epoch_b,
    len_a, len_b]: len_a until epoch_a, then linear to len_b at epoch_b), the SAC policy acting.
    Their transitions go to a ring buffer that keeps the newest `model_retain_epochs` epochs of
    rollouts. After every env transition SAC takes `updates_per_step` gradient steps on batches
    with a fraction `real_ratio` of real data, the rest model data. Each epoch ends with
    `num_eval_episodes` evaluation episodes of the deterministic policy.

    learned_reward / learned_termination: the model's heads (MBPO's default) or the task's known
    functions (`mbjax.envs.resolve_task`; termination is exact for the Brax locomotion tasks);
    use_estimated_reward: allow a known reward that is only an estimate from observations.
    replay_capacity: real-data buffer size (None: every transition of the run).
    """

    # SAC alone's fields with MBPO's defaults.
    steps_per_epoch: int = 250
    init_random_steps: int = 5000
    updates_per_step: int = 20
    # The model.
    model_train_every: int = 250
    rollout_batch_size: int = 100_000
    rollout_schedule: tuple[int, int, int, int] = (20, 100, 1, 1)
    model_retain_epochs: int = 1
    real_ratio: float = 0.05
    learned_reward: bool = True
    learned_termination: bool = True
    use_estimated_reward: bool = False
    model: EnsembleConfig = DEFAULT_MODEL

    def __post_init__(self) -> None:
        super().__post_init__()
        validation.field_int_tuple(self, "rollout_schedule", lo=0, length=4)
        for name in ("model_train_every", "rollout_batch_size", "model_retain_epochs"):
            validation.field_int(self, name)
        for name in ("learned_reward", "learned_termination", "use_estimated_reward"):
            validation.field_bool(self, name)
        validation.field_float(self, "real_ratio", 0.0, 1.0)
        if not isinstance(self.model, EnsembleConfig):
            raise validation.field_error(self, "model", "an EnsembleConfig")
        if self.value_expansion != "none":
            raise validation.field_error(
                self, "value_expansion",
                "none (MBPO trains SAC on model rollouts; value expansion is --algo=sac's)")
        self._check_relations()

    def _check_relations(self) -> None:
        """Rules between fields (sizes that must divide, heads the model must have)."""
        multiples = (("model_train_every", "num_envs"), ("steps_per_epoch", "model_train_every"))
        for name, of in multiples:
            if getattr(self, name) % getattr(self, of):
                raise validation.field_error(self, name, f"a multiple of {of}={getattr(self, of)}")
        a, b, la, lb = self.rollout_schedule
        if b <= a or la < 1 or lb < 1:
            raise validation.field_error(
                self, "rollout_schedule",
                "4 ints [epoch_a, epoch_b, len_a, len_b] with 0 <= epoch_a < epoch_b, lengths >= 1",
            )
        if self.learned_reward and not self.model.predict_reward:
            raise validation.field_error(self, "learned_reward",
                                         "True only with model.predict_reward=True")
        if self.learned_termination and not self.model.predict_termination:
            raise validation.field_error(self, "learned_termination",
                                         "True only with model.predict_termination=True")
        k = self.model.elites_count
        if self.rollout_batch_size % k:
            raise validation.field_error(self, "rollout_batch_size",
                                         f"a multiple of the number of elites ({k})")
        if self.rollout_batch_size * self.max_rollout_length > self.model_capacity:
            raise validation.field_error(self, "rollout_batch_size",
                                         "at most the model buffer capacity")
        if self.num_real_samples == 0 and self.real_ratio > 0:
            raise validation.field_error(self, "real_ratio",
                                         "0 or large enough for one real item per SAC batch")

    # Derived sizes (static) ---------------------------------------------------------------

    @property
    def blocks_per_epoch(self) -> int:
        """Model refits (and rollout phases) per epoch."""
        return self.steps_per_epoch // self.model_train_every

    @property
    def max_rollout_length(self) -> int:
        return max(self.rollout_schedule[2], self.rollout_schedule[3])

    @property
    def model_capacity(self) -> int:
        """Model buffer size: `model_retain_epochs` epochs of rollouts at the longest length."""
        return (self.rollout_batch_size * self.max_rollout_length * self.blocks_per_epoch
                * self.model_retain_epochs)

    @property
    def num_real_samples(self) -> int:
        """Real items per SAC batch (the rest come from the model buffer)."""
        return int(math.floor(self.real_ratio * self.sac.batch_size + 0.5))

    def rollout_length(self, epoch: int) -> int:
        """MBPO's schedule (host side, for reporting); `train.rollout_length` is the traced one."""
        a, b, la, lb = self.rollout_schedule
        frac = min(max((epoch - a) / (b - a), 0.0), 1.0)
        return int(la + frac * (lb - la))
