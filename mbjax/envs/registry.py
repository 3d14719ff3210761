"""`make(name)` and `names()`: one registry for Brax, MuJoCo Playground DM Control and own tasks.

Brax and Playground are imported lazily inside `make`, so `import mbjax.envs` stays light.
The Brax/DMC name lists are static (so `names()` needs neither package); a test checks them
against the installed packages.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from typing import Any

from mbjax import validation
from mbjax.envs.wrappers import EpisodeWrapper, PlaygroundToBrax

# brax.envs._envs without 'fast' (a trivial test env of Brax's own test suite).
BRAX_ENVS: tuple[str, ...] = (
    "ant", "halfcheetah", "hopper", "humanoid", "humanoidstandup", "inverted_double_pendulum",
    "inverted_pendulum", "pusher", "reacher", "swimmer", "walker2d",
)
BRAX_BACKENDS: tuple[str, ...] = ("generalized", "mjx", "positional", "spring")
# Default: Brax's own default for its envs. On CPU it is ~3x faster than 'mjx' on halfcheetah and
# on par on hopper; 'spring'/'positional' are faster still but approximate physics (other timestep,
# gears), so they stay opt-in (measured numbers: benchmarks/results/env_throughput.json, report).
BRAX_DEFAULT_BACKEND = "generalized"
BRAX_DEFAULT_EPISODE_LENGTH = 1000

# mujoco_playground.dm_control_suite.ALL_ENVS (playground 0.2.0).
DMC_ENVS: tuple[str, ...] = (
    "AcrobotSwingup", "AcrobotSwingupSparse", "BallInCup", "CartpoleBalance",
    "CartpoleBalanceSparse", "CartpoleSwingup", "CartpoleSwingupSparse", "CheetahRun",
    "FingerSpin", "FingerTurnEasy", "FingerTurnHard", "FishSwim", "HopperHop", "HopperStand",
    "HumanoidRun", "HumanoidStand", "HumanoidWalk", "PendulumSwingup", "PointMass", "ReacherEasy",
    "ReacherHard", "SwimmerSwimmer6", "WalkerRun", "WalkerStand", "WalkerWalk",
)
DMC_IMPLS: tuple[str, ...] = ("jax", "warp")
# MJX's pure-JAX implementation: on CPU it ran CartpoleSwingup ~100x faster than 'warp'
# (497k vs 4.4k steps/s at batch 64) and compiles without warp's kernel-build log spam.
DMC_DEFAULT_IMPL = "jax"

# Own tasks: name -> (module, class).
OWN_TASKS: dict[str, tuple[str, str]] = {
    "cartpole_swingup": ("mbjax.envs.tasks.cartpole_swingup", "CartpoleSwingup"),
    "cartpole_balance": ("mbjax.envs.tasks.cartpole_balance", "CartpoleBalance"),
    "pendulum_swingup": ("mbjax.envs.tasks.pendulum_swingup", "PendulumSwingup"),
    "point_mass": ("mbjax.envs.tasks.point_mass", "PointMass"),
    # Discrete-action tasks (`mbjax.envs.discrete`: num_actions, integer actions).
    "maze/dyna": ("mbjax.envs.tasks.dyna_maze", "DynaMaze"),
    "maze/blocking": ("mbjax.envs.tasks.dyna_maze", "BlockingMaze"),
    "maze/shortcut": ("mbjax.envs.tasks.dyna_maze", "ShortcutMaze"),
    "cartpole_discrete": ("mbjax.envs.tasks.cartpole_discrete", "CartpoleDiscrete"),
}


def names() -> list[str]:
    """All names `make` accepts: own tasks, then `brax/<name>`, then `dmc/<Name>`."""
    return (
        list(OWN_TASKS)
        + [f"brax/{n}" for n in BRAX_ENVS]
        + [f"dmc/{n}" for n in DMC_ENVS]
    )


def check_name(name: str) -> None:
    """Raises ValueError (with the closest match) if `name` is not a known environment."""
    if not isinstance(name, str) or name not in names():
        known = names()
        close = difflib.get_close_matches(str(name), known, n=3, cutoff=0.5)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(f"Unknown environment {name!r}.{hint} Known environments: {known}")


def make(
    name: str,
    *,
    episode_length: int | None = None,
    action_repeat: int = 1,
    pixels: bool = False,
    frame_stack: int | None = None,
    image_size: int | None = None,
    **kwargs: Any,
) -> Any:
    """Creates environment `name` wrapped in `EpisodeWrapper` (Brax `Env` protocol).

    Args:
      name: one of `names()`: an own task (`cartpole_swingup`, `cartpole_balance`,
        `pendulum_swingup`, `point_mass`; discrete-action: `maze/dyna`, `maze/blocking`,
        `maze/shortcut`, `cartpole_discrete`), `brax/<env>` or `dmc/<Name>`.
      episode_length: time limit in wrapped-env steps (default: own tasks 200, point_mass 50,
        brax 1000, dmc the Playground config's `episode_length` (1000)).
      action_repeat: repeat each action this many env steps, summing rewards.
      pixels: observe uint8 images [image_size, image_size, 3 * frame_stack] instead of the
        vector observation (`mbjax.envs.pixels.PixelWrapper` around the `EpisodeWrapper`; frames
        are stacked oldest first, newest last; rewards still come from the state; the vector
        observation is in `state.info['state_obs']`).
      frame_stack: frames per observation (default 1); only with pixels=True.
      image_size: image height = width in pixels (default 64); only with pixels=True.
      **kwargs: family-specific options:
        brax/*: `backend` in BRAX_BACKENDS (default 'generalized') and the Brax env's constructor
          arguments (e.g. `ctrl_cost_weight`, `n_frames`);
        dmc/*: `impl` in ('jax', 'warp') (default 'jax'), `config_overrides` (dict), or any
          top-level key of the Playground default config (e.g. `ctrl_dt`, `sim_dt`);
        own tasks: their constructor arguments (e.g. `reward_type` for pendulum_swingup;
          `layout`, `layout_after`, `change_step` for maze/*).

    Returns:
      env with `reset(key) -> State`, `step(state, action[A]) -> State`, `observation_size`,
      `action_size`, `backend`; unbatched (use `jax.vmap`), jittable. A discrete-action task
      (`mbjax.envs.discrete`) comes in `DiscreteEpisodeWrapper` instead: `num_actions` and an
      int32 action `[]` in place of `action_size` and `[A]`.

    Raises:
      ValueError: unknown name (listing known names and the closest match), episode_length <= 0,
        action_repeat < 1, an unknown keyword / backend / impl, frame_stack / image_size without
        pixels=True, or pixels=True for an env `mbjax.render` cannot draw.
    """
    check_name(name)
    if episode_length is not None:
        validation.check_int("make: episode_length", episode_length)
    validation.check_int("make: action_repeat", action_repeat)
    if not pixels and (frame_stack is not None or image_size is not None):
        raise ValueError("make: frame_stack and image_size need pixels=True")

    if name.startswith("brax/"):
        env, default_length = _make_brax(name[len("brax/"):], kwargs)
    elif name.startswith("dmc/"):
        env, default_length = _make_dmc(name[len("dmc/"):], kwargs)
    else:
        env, default_length = _make_own(name, kwargs)
    length = default_length if episode_length is None else episode_length
    if isinstance(getattr(env, "num_actions", None), int):
        return _wrap_discrete(name, env, length, action_repeat, pixels)
    env = EpisodeWrapper(env, episode_length=length, action_repeat=action_repeat)
    if pixels:
        from mbjax.envs.pixels import PixelWrapper  # imports mbjax.render only when asked

        env = PixelWrapper(
            env,
            frame_stack=1 if frame_stack is None else frame_stack,
            image_size=64 if image_size is None else image_size,
        )
    return env


def _wrap_discrete(name: str, env: Any, length: int, action_repeat: int, pixels: bool) -> Any:
    """A discrete-action task in its `DiscreteEpisodeWrapper` (`mbjax.envs.discrete`)."""
    from mbjax.envs.discrete import DiscreteEpisodeWrapper

    if action_repeat != 1 or pixels:
        raise ValueError(f"make: {name} is a discrete-action task; action_repeat and pixels "
                         "are for continuous tasks")
    return DiscreteEpisodeWrapper(env, episode_length=length)


def _unknown_kwargs(name: str, given: dict, allowed: set[str]) -> None:
    bad = sorted(set(given) - allowed)
    if bad:
        raise ValueError(
            f"{name}: unknown keyword argument(s) {bad}; allowed: {sorted(allowed)}"
        )


def _init_params(cls: type) -> set[str]:
    params = inspect.signature(cls.__init__).parameters.values()
    return {
        p.name for p in params
        if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    }


def _make_own(name: str, kwargs: dict) -> tuple[Any, int]:
    module, cls_name = OWN_TASKS[name]
    cls = getattr(importlib.import_module(module), cls_name)
    _unknown_kwargs(name, kwargs, _init_params(cls))
    env = cls(**kwargs)
    return env, cls.default_episode_length


def _make_brax(short: str, kwargs: dict) -> tuple[Any, int]:
    import brax.envs

    backend = kwargs.pop("backend", BRAX_DEFAULT_BACKEND)
    if backend not in BRAX_BACKENDS:
        raise ValueError(f"brax/{short}: backend={backend!r} is not one of {BRAX_BACKENDS}")
    _check_brax_compatible(short)
    cls = brax.envs._envs[short]
    # Env classes forward **kwargs to PipelineEnv (n_frames, debug).
    allowed = _init_params(cls) | {"n_frames", "debug"}
    allowed.discard("backend")
    _unknown_kwargs(f"brax/{short}", kwargs, allowed)
    env = brax.envs.get_environment(short, backend=backend, **kwargs)
    return env, BRAX_DEFAULT_EPISODE_LENGTH


def _check_brax_compatible(short: str) -> None:
    """Fails early, with the reason, for a Brax env the installed JAX cannot run."""
    if short == "swimmer":
        # brax 0.14's fluid model (only swimmer has viscosity) calls jnp.clip(a_min=...), a keyword
        # newer JAX removed; it would fail deep inside tracing of env.step.
        import jax.numpy as jnp

        try:
            jnp.clip(jnp.zeros(()), a_min=0.0)
        except TypeError as err:
            raise ValueError(
                "brax/swimmer cannot run with the installed JAX: Brax's fluid model calls "
                f"jnp.clip(a_min=...), which this JAX rejects ({err}). Use an older JAX or a "
                "newer Brax."
            ) from None


def _make_dmc(short: str, kwargs: dict) -> tuple[Any, int]:
    from mujoco_playground import dm_control_suite

    impl = kwargs.pop("impl", DMC_DEFAULT_IMPL)
    if impl not in DMC_IMPLS:
        raise ValueError(f"dmc/{short}: impl={impl!r} is not one of {DMC_IMPLS}")
    overrides = dict(kwargs.pop("config_overrides", None) or {})
    config = dm_control_suite.get_default_config(short)
    allowed = set(config.keys()) - {"impl", "vision", "vision_config"}
    _unknown_kwargs(f"dmc/{short}", kwargs, allowed | {"impl", "config_overrides"})
    bad = sorted(k for k in overrides if k.split(".")[0] not in config)
    if bad:
        raise ValueError(
            f"dmc/{short}: unknown config_overrides key(s) {bad}; allowed: {sorted(config.keys())}"
        )
    overrides.update(kwargs)
    overrides["impl"] = impl
    env = dm_control_suite.load(short, config_overrides=overrides)
    return PlaygroundToBrax(env, impl=impl), int(config.episode_length)
