"""MBPO configuration: one frozen dataclass validated on construction."""

from __future__ import annotations

import dataclasses
import math

from mbjax.agents.sac import SACConfig
from mbjax.models import EnsembleConfig

# MBPO's model: 7 members, 5 elites, 4 x 200 swish, learned reward and termination heads.
DEFAULT_MODEL = EnsembleConfig(
    ensemble_size=7, num_elites=5, hidden_sizes=(200, 200, 200, 200), predict_reward=True,
    predict_termination=True, learning_rate=1e-3, batch_size=256, holdout_ratio=0.2,
    max_holdout=5000, max_epochs=200, patience=5,
    weight_decays=(2.5e-5, 5e-5, 7.5e-5, 7.5e-5, 1e-4),
)


@dataclasses.dataclass(frozen=True)
class Config:
    """MBPO (Janner et al. 2019): short model rollouts branched from real states feed SAC.

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

    use_model=False (with real_ratio=1.0) is SAC alone on the same loop.
    learned_reward / learned_termination: the model's heads (MBPO's default) or the task's known
    functions (`mbjax.envs.task_fns`; termination is exact for the Brax locomotion tasks).
    replay_capacity: real-data buffer size (None: every transition of the run).
    """

    env: str = "point_mass"
    episode_length: int | None = None
    action_repeat: int = 1
    num_epochs: int = 10
    steps_per_epoch: int = 250
    num_envs: int = 1
    init_random_steps: int = 5000
    use_model: bool = True
    model_train_every: int = 250
    rollout_batch_size: int = 100_000
    rollout_schedule: tuple[int, int, int, int] = (20, 100, 1, 1)
    model_retain_epochs: int = 1
    real_ratio: float = 0.05
    updates_per_step: int = 20
    num_eval_episodes: int = 5
    learned_reward: bool = True
    learned_termination: bool = True
    replay_capacity: int | None = None
    model: EnsembleConfig = DEFAULT_MODEL
    sac: SACConfig = SACConfig()

    def __post_init__(self) -> None:
        def bad(name: str, allowed: str) -> ValueError:
            return ValueError(
                f"mbpo Config.{name}={getattr(self, name)!r} is invalid; allowed: {allowed}"
            )

        def int_at_least(name: str, lo: int) -> None:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise bad(name, f"an int >= {lo}")

        if isinstance(self.rollout_schedule, list):
            object.__setattr__(self, "rollout_schedule", tuple(self.rollout_schedule))
        for name in ("action_repeat", "num_epochs", "steps_per_epoch", "num_envs",
                     "model_train_every", "rollout_batch_size", "model_retain_epochs",
                     "updates_per_step", "num_eval_episodes"):
            int_at_least(name, 1)
        int_at_least("init_random_steps", 0)
        if self.episode_length is not None:
            int_at_least("episode_length", 1)
        if self.replay_capacity is not None:
            int_at_least("replay_capacity", 1)
        for name in ("use_model", "learned_reward", "learned_termination"):
            if not isinstance(getattr(self, name), bool):
                raise bad(name, "True or False")
        if self.init_random_steps % self.num_envs:
            raise bad("init_random_steps", f"a multiple of num_envs={self.num_envs}")
        if self.model_train_every % self.num_envs:
            raise bad("model_train_every", f"a multiple of num_envs={self.num_envs}")
        if self.steps_per_epoch % self.model_train_every:
            raise bad("steps_per_epoch",
                      f"a multiple of model_train_every={self.model_train_every}")
        rs = self.rollout_schedule
        if (
            not isinstance(rs, tuple) or len(rs) != 4
            or any(isinstance(v, bool) or not isinstance(v, int) for v in rs)
            or rs[0] < 0 or rs[1] <= rs[0] or rs[2] < 1 or rs[3] < 1
        ):
            raise bad(
                "rollout_schedule",
                "4 ints [epoch_a, epoch_b, len_a, len_b] with 0 <= epoch_a < epoch_b, lengths >= 1",
            )
        r = self.real_ratio
        if isinstance(r, bool) or not isinstance(r, (int, float)) or not 0.0 <= r <= 1.0:
            raise bad("real_ratio", "a float in [0, 1]")
        if not self.use_model and r != 1.0:
            raise bad("real_ratio", "1.0 when use_model=False (no model data to mix in)")
        if not isinstance(self.model, EnsembleConfig):
            raise bad("model", "an EnsembleConfig")
        if not isinstance(self.sac, SACConfig):
            raise bad("sac", "a SACConfig")
        if self.use_model:
            if self.learned_reward and not self.model.predict_reward:
                raise bad("learned_reward", "True only with model.predict_reward=True")
            if self.learned_termination and not self.model.predict_termination:
                raise bad("learned_termination", "True only with model.predict_termination=True")
            k = self.model.elites_count
            if self.rollout_batch_size % k:
                raise bad("rollout_batch_size", f"a multiple of the number of elites ({k})")
            if self.rollout_batch_size * self.max_rollout_length > self.model_capacity:
                raise bad("rollout_batch_size", "at most the model buffer capacity")
            if self.num_real_samples == 0 and self.real_ratio > 0:
                raise bad("real_ratio", "0 or large enough for one real item per SAC batch")

    # Derived sizes (static) ---------------------------------------------------------------

    @property
    def num_episodes(self) -> int:
        """Iterations of the run (epochs); the name the CLI's progress bar uses."""
        return self.num_epochs

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
        if not self.use_model:
            return self.sac.batch_size
        return int(math.floor(self.real_ratio * self.sac.batch_size + 0.5))

    @property
    def total_env_steps(self) -> int:
        return self.init_random_steps + self.num_epochs * self.steps_per_epoch

    def rollout_length(self, epoch: int) -> int:
        """MBPO's schedule (host side, for reporting); `train.rollout_length` is the traced one."""
        a, b, la, lb = self.rollout_schedule
        frac = min(max((epoch - a) / (b - a), 0.0), 1.0)
        return int(la + frac * (lb - la))
