"""Dreamer configuration: the world model (an `RSSMConfig`), the actor-critic learned in
imagination, and the env-interaction loop with its train ratio (Hafner et al. 2023, DreamerV3)."""

from __future__ import annotations

import dataclasses

from mbjax import validation
from mbjax.agents.program import ON_NONFINITE
from mbjax.models.rssm import RSSMConfig

ACTOR_GRADS = ("reinforce", "dynamics")


@dataclasses.dataclass(frozen=True)
class Config:
    """Dreamer: world model on sequence replay, actor and critic on imagined trajectories.

    Loop. `init` resets `num_envs` envs and takes `init_random_steps` uniform-random agent
    steps per env. Each of the `iterations` iterations then takes `steps_per_iteration` agent
    steps per env with the actor (the RSSM filter kept per env) in blocks of `train_every`
    steps, each block followed by `updates_per_block` = round(num_envs * train_every *
    train_ratio / (batch_size * seq_len)) updates: `train_ratio` is DreamerV3's replayed steps
    per agent step (agent steps of all envs; an agent step is `action_repeat` env steps).
    Each update: one world-model Adam step on `model.batch_size` sequences of `model.seq_len`
    (`replay.sample_sequences`, one buffer per env), then one actor and one critic step on
    trajectories imagined for `horizon` steps from every posterior state of that batch.
    `imagine_starts`: imagine from that many of the batch's B * T posterior states, drawn
    without replacement (None: all of them, as DreamerV3; fewer makes CPU runs affordable).
    `num_eval_episodes` episodes of the actor's mode end each iteration (0: the record's
    `episode_return` is the training envs' last finished episodes instead).
    The model's own `fit_steps` is not used here (the update count comes from the train ratio).

    env / episode_length / action_repeat: as `mbjax.envs.make` (env steps counted with repeats).
    replay_capacity: transitions kept per env (None: all of the run).
    pixels: image observations (`mbjax.envs.make(pixels=True)`, image_size
    model.image_size, model.image_channels / 3 stacked frames, stored uint8); needs
    model.encoder="conv".

    Actor-critic (DreamerV3 sec. "Critic learning" / "Actor learning"): MLPs of `layers` x
    `hidden` (LayerNorm + SiLU). lambda-returns with `discount` and `lam`; returns normalised by
    max(`return_norm_limit`, EMA of their `return_norm_high` - `return_norm_low` percentile
    range) (EMA rate `return_norm_rate`); entropy bonus `entropy`; critic: twohot over the
    model's symlog bins, regularised by `slow_critic_reg` towards a slow copy updated with
    rate `slow_critic_rate` every `slow_critic_every` updates. Continuous actions: a bounded
    normal (mean tanh, std in [min_std, max_std], samples clipped to [-1, 1]); discrete: a
    categorical with `action_unimix`. The actor's output layer starts with weights scaled by
    `actor_out_scale` (DreamerV3's policy outscale 0.01: the first policy's mean is ~0).
    `actor_grad`: "reinforce" (DreamerV3, any action space)
    or "dynamics" (Dreamer v1/v2: backpropagate the normalised returns through the model;
    continuous actions only). Adam with eps `adam_eps` and global-norm clip `grad_clip`.
    actor_lr, critic_lr, model.learning_rate, entropy, discount, lam, slow_critic_rate and
    return_norm_rate are float32 leaves of the run state (`grid_leaves`).
    """

    env: str = "dmc/CartpoleBalance"
    episode_length: int | None = None
    action_repeat: int = 2
    num_envs: int = 1
    iterations: int = 50
    steps_per_iteration: int = 500
    train_every: int = 2
    init_random_steps: int = 2500
    train_ratio: float = 512.0
    replay_capacity: int | None = None
    num_eval_episodes: int = 1
    pixels: bool = False
    model: RSSMConfig = RSSMConfig()
    hidden: int = 256
    layers: int = 2
    horizon: int = 15
    imagine_starts: int | None = None
    discount: float = 1.0 - 1.0 / 333.0
    lam: float = 0.95
    actor_lr: float = 3e-5
    critic_lr: float = 3e-5
    adam_eps: float = 1e-5
    grad_clip: float = 100.0
    entropy: float = 3e-4
    slow_critic_rate: float = 0.02
    slow_critic_every: int = 1
    slow_critic_reg: float = 1.0
    return_norm_rate: float = 0.01
    return_norm_low: float = 5.0
    return_norm_high: float = 95.0
    return_norm_limit: float = 1.0
    actor_grad: str = "reinforce"
    min_std: float = 0.1
    max_std: float = 1.0
    action_unimix: float = 0.01
    actor_out_scale: float = 0.01
    on_nonfinite: str = "raise"

    def __post_init__(self) -> None:
        validation.field_optional_int(self, "episode_length")
        for name in ("action_repeat", "num_envs", "iterations", "steps_per_iteration", "hidden",
                     "layers", "horizon", "slow_critic_every", "train_every"):
            validation.field_int(self, name)
        validation.field_int(self, "init_random_steps", lo=0)
        validation.field_int(self, "num_eval_episodes", lo=0)
        validation.field_optional_int(self, "replay_capacity")
        validation.field_optional_int(self, "imagine_starts")
        if self.imagine_starts is not None and self.imagine_starts > self.replayed_per_update:
            raise validation.field_error(
                self, "imagine_starts",
                f"None or an int <= batch_size * seq_len = {self.replayed_per_update}")
        if not isinstance(self.model, RSSMConfig):
            raise validation.field_error(self, "model", "an RSSMConfig")
        validation.field_float(self, "train_ratio", 0.0, lo_open=True)
        for name in ("discount", "lam", "slow_critic_rate", "return_norm_rate"):
            validation.field_float(self, name, 0.0, 1.0)
        for name in ("actor_lr", "critic_lr", "adam_eps", "grad_clip", "min_std",
                     "return_norm_limit"):
            validation.field_float(self, name, 0.0, lo_open=True)
        for name in ("entropy", "slow_critic_reg"):
            validation.field_float(self, name, 0.0)
        validation.field_float(self, "return_norm_low", 0.0, 100.0)
        validation.field_float(self, "return_norm_high", 0.0, 100.0)
        if not self.return_norm_low < self.return_norm_high:
            raise validation.field_error(
                self, "return_norm_high", f"a percentile > return_norm_low={self.return_norm_low}")
        validation.field_float(self, "max_std", 0.0, lo_open=True)
        if not self.min_std <= self.max_std:
            raise validation.field_error(self, "max_std", f"a number >= min_std={self.min_std}")
        validation.field_float(self, "action_unimix", 0.0, 1.0, hi_open=True)
        validation.field_float(self, "actor_out_scale", 0.0, lo_open=True)
        validation.field_choice(self, "actor_grad", ACTOR_GRADS)
        validation.field_bool(self, "pixels")
        if self.pixels != (self.model.encoder == "conv"):
            raise validation.field_error(
                self, "pixels", f"{self.model.encoder == 'conv'} with model.encoder="
                f"{self.model.encoder!r} (images need the conv encoder, vectors the mlp one)")
        validation.field_choice(self, "on_nonfinite", ON_NONFINITE)
        if self.steps_per_iteration % self.train_every:
            raise validation.field_error(
                self, "train_every", f"a divisor of steps_per_iteration={self.steps_per_iteration}")
        if self.updates_per_block < 1:
            raise validation.field_error(
                self, "train_ratio",
                f"a ratio giving >= 1 update per block (num_envs * train_every * train_ratio >= "
                f"0.5 * batch_size * seq_len = {self.replayed_per_update / 2})")
        if self.model.batch_size % self.num_envs:
            raise validation.field_error(
                self, "num_envs", f"a divisor of model.batch_size={self.model.batch_size}")

    @property
    def replayed_per_update(self) -> int:
        """Replayed steps per update: batch_size * seq_len."""
        return self.model.batch_size * self.model.seq_len

    @property
    def updates_per_block(self) -> int:
        """round(num_envs * train_every * train_ratio / replayed_per_update)."""
        steps = self.num_envs * self.train_every
        return int(round(steps * self.train_ratio / self.replayed_per_update))

    @property
    def blocks_per_iteration(self) -> int:
        return self.steps_per_iteration // self.train_every

    @property
    def total_agent_steps(self) -> int:
        """Agent steps per env in the whole run (random steps included)."""
        return self.init_random_steps + self.iterations * self.steps_per_iteration

    @property
    def capacity(self) -> int:
        """Replay capacity per env."""
        return self.replay_capacity or self.total_agent_steps
