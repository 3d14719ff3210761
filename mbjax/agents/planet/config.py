"""PlaNet configuration: one frozen dataclass (validated with `mbjax.validation`)."""

from __future__ import annotations

import dataclasses
from typing import Any

from mbjax import configs, validation
from mbjax.agents.program import ON_NONFINITE
from mbjax.models.rssm import RSSMConfig
from mbjax.planners import PLANNERS, planner_config
from mbjax.rollout import PropagationConfig


def _planner_defaults(name: str) -> Any:
    """The default config of planner `name` (what `planner_config` becomes on a switch)."""
    validation.check_choice("Config.planner", name, sorted(PLANNERS))
    return planner_config(name)


@dataclasses.dataclass(frozen=True)
class Config:
    """PlaNet (Hafner et al. 2019): an RSSM world model and MPC in its latent space.

    env: registry name; episode_length: env steps per episode (None: the env's default);
    action_repeat: env steps per agent action (PlaNet: 8 for DM Control cartpole).
    pixels: observe uint8 images [image_size, image_size, 3 * frame_stack] (`mbjax.envs.make(...,
    pixels=True)`); the model's encoder is then resolved to "conv" with those sizes, whatever
    `model.encoder` said. Without pixels the encoder must be "mlp" (state vectors).
    num_episodes: total episodes, the first `num_seed_episodes` with uniform random actions.
    model: the RSSM and its fit; `model.fit_steps` Adam steps are taken before every learning
    episode (PlaNet's "collect interval" C = 100), `model.learning_rate` is a grid leaf.
    planner / planner_config: any planner of `mbjax.planners.PLANNERS` (a `configs.selector`:
    `--config.planner=icem` resets planner_config to iCEM's defaults); it plans in latent space
    through `mbjax.rollout.make_model_objective` with the RSSM as the model (reward: the RSSM's
    head). Its numeric hyperparameters are grid leaves (`PlaNetState.planner_hparams`).
    propagation: how candidates are rolled through the RSSM's prior (default: one sampled latent
    trajectory per candidate, as PlaNet; mode "expectation" uses the prior's mean instead).
    exploration_noise: std of the Gaussian added to each planned action while collecting
    (PlaNet: 0.3; clipped to [-1, 1]); a grid leaf. Evaluation (`make_policy`) adds none.
    learned_termination: apply the RSSM's continue head as a soft termination while planning
    (for envs that terminate; PlaNet's tasks never do, so the default ignores the head).
    on_nonfinite: "raise" or "rollback" an episode that met NaN/Inf.
    """

    env: str = "cartpole_swingup"
    episode_length: int | None = None
    action_repeat: int = 1
    pixels: bool = False
    frame_stack: int = 1
    image_size: int = 64
    num_episodes: int = 20
    num_seed_episodes: int = 5
    model: RSSMConfig = RSSMConfig(deter=200, stoch=30, classes=0)
    planner: str = configs.selector("planner_config", default_for=_planner_defaults, default="cem")
    planner_config: Any = None
    propagation: PropagationConfig = PropagationConfig(mode="tsinf", num_particles=1)
    exploration_noise: float = 0.3
    learned_termination: bool = False
    on_nonfinite: str = "raise"

    def __post_init__(self) -> None:
        for name in ("action_repeat", "num_episodes", "num_seed_episodes", "frame_stack"):
            validation.field_int(self, name)
        validation.field_optional_int(self, "episode_length")
        validation.field_int(self, "image_size", lo=8)
        validation.field_bool(self, "pixels")
        validation.field_bool(self, "learned_termination")
        if self.num_seed_episodes >= self.num_episodes:
            raise validation.field_error(
                self, "num_seed_episodes", f"fewer than num_episodes={self.num_episodes}")
        validation.field_choice(self, "planner", sorted(PLANNERS))
        validation.field_float(self, "exploration_noise", 0.0)
        validation.field_choice(self, "on_nonfinite", ON_NONFINITE)
        if not isinstance(self.model, RSSMConfig):
            raise validation.field_error(self, "model", "an RSSMConfig")
        if not isinstance(self.propagation, PropagationConfig):
            raise validation.field_error(self, "propagation", "a PropagationConfig")
        if self.pixels:
            # The image shape is the env's: resolve the encoder here so every Config carries the
            # model it really builds (RSSMConfig validates image_size = 4 * 2**k).
            object.__setattr__(self, "model", dataclasses.replace(
                self.model, encoder="conv", image_size=self.image_size,
                image_channels=3 * self.frame_stack))
        elif self.model.encoder != "mlp":
            raise validation.invalid("Config.model.encoder", self.model.encoder,
                                     "'mlp' for state observations (images: pixels=True)")
        if not self.pixels and (self.frame_stack != 1 or self.image_size != 64):
            raise validation.field_error(self, "pixels", "True when frame_stack or image_size "
                                         "is set")
        object.__setattr__(self, "planner_config",
                           planner_config(self.planner, self.planner_config))

    @property
    def horizon(self) -> int:
        """The planning horizon (agent steps)."""
        cfg = self.planner_config
        return cfg.horizon if hasattr(cfg, "horizon") else cfg.cem.horizon
