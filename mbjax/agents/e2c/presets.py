"""E2C presets.

"paper": the settings Watter et al. 2015 ("Embed to Control", section 5 and the supplement)
give for the inverted pendulum swing-up as we read them: 48x48 images, two frames per
observation (the velocity is not visible in one), a 3-dimensional latent, 1-dimensional
action; encoder and decoder of two ReLU layers of 800 units on the flattened image and a
transition network of two 100-unit ReLU layers; Adam. The paper renders binary 48x48 grey
images and trains on random-action triples from uniformly sampled states (`start_states=
"uniform"`, the default); mbjax renders RGB and adds its own MPC episodes (see `train`). The
remaining numbers (episodes, updates, lambda, MPC horizon, pixel_std) are ours.
"cpu": 16x16 images through the RSSM conv stack, latent 3, sized for 2 loaded CPU cores (a
32x32 conv or an 800-unit MLP update is 3-10x slower there). "test": 16x16 images, 20-step
episodes, seconds.
"""

from __future__ import annotations

from mbjax.agents.e2c.config import Config
from mbjax.agents.sac.presets import choose

PRESETS: dict[str, dict[str, Config]] = {"paper": {}, "cpu": {}, "test": {}}


def _paper() -> Config:
    return Config(image_size=48, frame_stack=2, latent_size=3, encoder="mlp", hidden_size=800,
                  hidden_layers=2, transition_hidden=(100, 100), learning_rate=1e-4,
                  batch_size=128, fit_steps=1000, iterations=30, random_episodes=10,
                  buffer_capacity=50000, horizon=30, ilqr_iterations=10)


def _cpu() -> Config:
    return Config(image_size=16, depth=16, fit_steps=250, iterations=8, random_episodes=4,
                  buffer_capacity=12000)


def _test() -> Config:
    return Config(episode_length=20, image_size=16, depth=8, transition_hidden=(32,),
                  batch_size=16, fit_steps=30, iterations=3, random_episodes=2,
                  buffer_capacity=200, horizon=5, ilqr_iterations=2, eval_batch=32)


def preset(env: str, name: str = "cpu") -> Config:
    """The preset `name` for `env` (generic settings of `name` where env has no entry)."""
    return choose("e2c", PRESETS, {"paper": _paper, "cpu": _cpu, "test": _test}, env, name)
