"""E2C configuration (Watter et al. 2015, "Embed to Control")."""

from __future__ import annotations

import dataclasses

from mbjax import validation
from mbjax.agents.program import ON_NONFINITE

ENCODERS = ("conv", "mlp")
START_STATES = ("uniform", "reset")


@dataclasses.dataclass(frozen=True)
class Config:
    """E2C on a pixel env: a VAE with a locally linear latent transition, controlled by iLQR-MPC
    in its latent space (see `mbjax.agents.e2c`).

    env: an mbjax task that `mbjax.render` draws (pendulum_swingup, cartpole_*, point_mass);
      observed as uint8 images [image_size, image_size, 3 * frame_stack] (`make(...,
      pixels=True)`); frame_stack 2 lets one observation carry the velocity (as in the paper).
    episode_length: steps per episode (None: the env's). action_repeat: env steps per action.
    latent_size: n_z. encoder: "conv" (the RSSM's 4x4 stride-2 conv stack of `depth`, 2 depth,
      ... channels; image_size must be 4 * 2**k) or "mlp" (the paper's pendulum networks:
      `hidden_layers` ReLU layers of `hidden_size` units on the flattened image, any size).
    pixel_std: the decoder's Gaussian std on pixels scaled to [-0.5, 0.5] (`model`); 0.707
      is a plain sum of squared errors.
    transition_hidden: the transition network's ReLU layers (it maps z to v, r, B, o).
    transition_kl_weight: lambda, the weight of KL(Q_hat(z_{t+1} | z_t, u_t) || Q(z_{t+1} |
      x_{t+1})). learning_rate / batch_size / fit_steps: Adam steps per iteration on uniformly
      sampled (x_t, u_t, x_{t+1}) triples; grad_clip: global-norm clip.
    start_states: where the random-action data starts. "uniform" (the paper's, section 5):
      `random_episodes * T` triples (T the episode length), each from a physical state drawn
      uniformly over the task's box (`states.STATE_BOXES`), frame_stack - 1 random warm-up
      steps, then one random action (frame_stack env steps per triple). "reset": `random_episodes`
      uniform-random episodes from the env's reset (a swing-up then never sees upright images).
    iterations: one = the random-action data + `fit_steps` model updates +
      one latent iLQR-MPC episode (executed with N(0, exploration_noise^2) added; its return is
      the record's `episode_return`; its transitions join the data).
    buffer_capacity: transitions kept (uint8 images; the oldest are overwritten).
    horizon / ilqr_iterations: the latent iLQR's plan length and iterations per plan (warm
      started from the previous plan, shifted). state_cost / action_cost: the latent cost
      state_cost |z' - z_goal|^2 + action_cost |u|^2, z_goal the encoding of the goal image
      (the task's goal state, rendered: the pendulum upright at rest).
    eval_batch: held-out triples from uniformly drawn states on which `prediction_error` and
      `goal_correlation` are measured after each fit.
    learning_rate, transition_kl_weight, state_cost, action_cost and exploration_noise are
    float32 leaves of the run state (grid axes of `experiments.sweep`).
    """

    env: str = "pendulum_swingup"
    episode_length: int | None = None
    action_repeat: int = 1
    image_size: int = 32
    frame_stack: int = 2
    latent_size: int = 3
    encoder: str = "conv"
    depth: int = 16
    hidden_size: int = 800
    hidden_layers: int = 2
    transition_hidden: tuple[int, ...] = (100, 100)
    pixel_std: float = 0.1
    transition_kl_weight: float = 1.0
    learning_rate: float = 3e-4
    grad_clip: float = 100.0
    batch_size: int = 64
    fit_steps: int = 200
    iterations: int = 20
    random_episodes: int = 4
    start_states: str = "uniform"
    buffer_capacity: int = 20000
    horizon: int = 20
    ilqr_iterations: int = 5
    state_cost: float = 1.0
    action_cost: float = 0.01
    exploration_noise: float = 0.3
    eval_batch: int = 256
    on_nonfinite: str = "raise"

    def __post_init__(self) -> None:
        validation.field_optional_int(self, "episode_length")
        for name in ("action_repeat", "frame_stack", "latent_size", "depth", "hidden_size",
                     "hidden_layers", "batch_size", "fit_steps", "iterations", "buffer_capacity",
                     "horizon", "ilqr_iterations", "eval_batch", "random_episodes"):
            validation.field_int(self, name)
        validation.field_int(self, "image_size", lo=8)
        validation.field_choice(self, "encoder", ENCODERS)
        validation.field_choice(self, "start_states", START_STATES)
        if self.encoder == "conv" and (self.image_size & (self.image_size - 1)
                                       or self.image_size < 8):
            raise validation.field_error(self, "image_size", "4 * 2**k with k >= 1 (8, 16, 32, "
                                         "64...) for encoder='conv' (any size >= 8 for 'mlp')")
        validation.field_int_tuple(self, "transition_hidden")
        for name in ("learning_rate", "grad_clip", "pixel_std"):
            validation.field_float(self, name, 0.0, lo_open=True)
        for name in ("transition_kl_weight", "state_cost", "action_cost", "exploration_noise"):
            validation.field_float(self, name, 0.0)
        validation.field_choice(self, "on_nonfinite", ON_NONFINITE)
