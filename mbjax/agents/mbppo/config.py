"""MB-PPO configuration (`--algo=mbppo`)."""

from __future__ import annotations

import dataclasses

from mbjax import validation
from mbjax.agents.program import ON_NONFINITE
from mbjax.models import EnsembleConfig

DYNAMICS = ("ensemble", "true")


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """PPO (Schulman et al. 2017) with GAE (Schulman et al. 2016) on imagined rollouts.

    hidden_sizes: actor and critic MLPs; learning_rate: Adam for both (a leaf); clip: the ratio
    clip epsilon; discount, gae_lambda; entropy_coef; value_coef; epochs x minibatches of every
    batch of imagined transitions; max_grad_norm: global-norm gradient clipping, applied to the
    actor (with its log-std) and the critic separately, so that the critic's large early
    gradients (returns of tens) do not scale the policy gradient away.
    """

    hidden_sizes: tuple[int, ...] = (64, 64)
    learning_rate: float = 3e-4
    clip: float = 0.2
    discount: float = 0.99
    gae_lambda: float = 0.95
    entropy_coef: float = 0.0
    value_coef: float = 0.5
    epochs: int = 4
    minibatches: int = 4
    max_grad_norm: float = 0.5
    init_log_std: float = -0.5

    def __post_init__(self) -> None:
        validation.field_int_tuple(self, "hidden_sizes")
        validation.field_float(self, "learning_rate", 0.0, lo_open=True)
        validation.field_float(self, "clip", 0.0, 1.0, lo_open=True)
        validation.field_float(self, "discount", 0.0, 1.0, lo_open=True)
        validation.field_float(self, "gae_lambda", 0.0, 1.0)
        validation.field_float(self, "entropy_coef", 0.0)
        validation.field_float(self, "value_coef", 0.0, lo_open=True)
        for name in ("epochs", "minibatches"):
            validation.field_int(self, name)
        validation.field_float(self, "max_grad_norm", 0.0, lo_open=True)
        validation.field_float(self, "init_log_std")


@dataclasses.dataclass(frozen=True)
class Config:
    """Model-based policy gradient (the lecture notes' "model-based RL with a policy": ME-TRPO,
    Kurutach et al. 2018, with PPO in place of TRPO).

    Loop: `num_seed_episodes` uniform-random episodes, then per episode: refit the ensemble on
    all real data; up to `policy_iterations` PPO iterations, each on `num_rollouts` imagined
    rollouts of `horizon` steps from real start states (replay), every rollout through one
    uniformly drawn elite for its whole length; after each iteration every elite scores the
    policy (mean imagined return from fixed starts and noise); an iteration passes when at least
    `improvement_ratio` of them score it above the last passed policy (ME-TRPO's rule), and the
    iterations stop after `validation_patience` failures in a row (patience 1: stop at the first
    failure, the paper's wording; small PPO steps are often within the noise of one check, so
    more patience lets the improvement accumulate against the same reference);
    keep_passed_policy: act with (and carry on from) the last policy that passed a check, not
    PPO's last iterate, which may have got worse in the models themselves;
    then one real episode with the stochastic policy into the buffer. `episode_return` is the
    deterministic policy's mean return over `num_eval_episodes` real episodes.
    learned_reward / learned_termination / use_estimated_reward: as for PETS
    (`mbjax.envs.resolve_task`).
    dynamics: 'ensemble' (learned, `model`) or 'true' (the task's exact physics,
    `mbjax.agents.pathwise.make_true_model`: PPO on the true dynamics through the same code
    path, the sanity check that separates PPO from model errors; own tasks, action_repeat 1).
    """

    env: str = "cartpole_swingup"
    episode_length: int | None = None
    action_repeat: int = 1
    num_episodes: int = 20
    num_seed_episodes: int = 1
    num_rollouts: int = 512
    horizon: int = 50
    policy_iterations: int = 20
    improvement_ratio: float = 0.7
    validation_patience: int = 1
    keep_passed_policy: bool = True
    num_eval_episodes: int = 2
    model: EnsembleConfig = EnsembleConfig()
    ppo: PPOConfig = PPOConfig()
    learned_reward: bool = False
    learned_termination: bool = False
    use_estimated_reward: bool = False
    on_nonfinite: str = "raise"
    dynamics: str = "ensemble"

    def __post_init__(self) -> None:
        validation.field_optional_int(self, "episode_length")
        for name in ("action_repeat", "num_episodes", "num_seed_episodes", "num_rollouts",
                     "horizon", "policy_iterations", "num_eval_episodes", "validation_patience"):
            validation.field_int(self, name)
        if self.num_seed_episodes >= self.num_episodes:
            raise validation.field_error(self, "num_seed_episodes",
                                         f"fewer than num_episodes={self.num_episodes}")
        validation.field_float(self, "improvement_ratio", 0.0, 1.0)
        if not isinstance(self.model, EnsembleConfig):
            raise validation.field_error(self, "model", "an EnsembleConfig")
        if not isinstance(self.ppo, PPOConfig):
            raise validation.field_error(self, "ppo", "a PPOConfig")
        validation.field_choice(self, "dynamics", DYNAMICS)
        if self.dynamics == "true" and self.action_repeat != 1:
            raise validation.field_error(self, "action_repeat", "1 with dynamics='true'")
        if self.dynamics == "ensemble" and self.num_rollouts % self.model.elites_count:
            raise validation.field_error(
                self, "num_rollouts", f"a multiple of the elites ({self.model.elites_count})")
        if (self.num_rollouts * self.horizon) % self.ppo.minibatches:
            raise validation.field_error(self, "num_rollouts",
                                         "num_rollouts * horizon a multiple of ppo.minibatches")
        for name in ("learned_reward", "learned_termination", "use_estimated_reward",
                     "keep_passed_policy"):
            validation.field_bool(self, name)
        if self.learned_reward and not self.model.predict_reward:
            raise validation.field_error(self, "learned_reward",
                                         "True only with model.predict_reward=True")
        if self.learned_termination and not self.model.predict_termination:
            raise validation.field_error(self, "learned_termination",
                                         "True only with model.predict_termination=True")
        validation.field_choice(self, "on_nonfinite", ON_NONFINITE)
