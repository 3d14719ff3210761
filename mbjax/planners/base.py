"""The planner protocol shared by every planner, plus small helpers they all use.

A planner is `Planner(init, plan, shift)`:

- `init(action_size, key) -> state`: the initial warm start (mean [H, A] = 0, std [H, A] =
  `config.init_std`, plus per-planner extras). The horizon H is static config.
- `plan(state, objective, obs, key) -> (actions [H, A], state, info)`: optimise an action sequence.
  `objective(actions: [N, H, A]) -> returns: [N]` (higher is better; `[N, H]` per-step rewards are
  also accepted and summed over H, MPPI can use them for per-step weights). `obs` is passed through
  for planners that want it and is unused by the planners here. The returned `state` holds the
  solution of THIS call, aligned with the returned `actions` (not yet shifted).
- `shift(state, steps) -> state`: advance the warm start after `steps` actions were executed:
  `mean[t] <- mean[t + steps]`, the last `steps` entries refilled with the initial mean/std. MPC
  that replans every step calls `shift(state, 1)`; one that executes `k` actions per plan calls
  `shift(state, k)`. `steps` may be a traced integer (it is applied with a gather, not a slice).

`info` is a dict of small arrays; every planner reports `best_return` (the best total return it
evaluated); sampling planners add per-iteration arrays [I] such as `elite_return` (mean return of
the elites), `iteration_best_return`, MPPI `effective_samples`; gradient planners the best return
per Adam step. Each config has a `trajectories_per_plan` property (sequences evaluated per call).

Shifting is explicit (rather than done inside `plan`) so the same `plan` serves replanning every
step, every k steps, and one-off open-loop plans without a hidden off-by-one.

Action bounds are [-1, 1] everywhere (mbjax envs normalise actions); every candidate a planner
evaluates and every returned action lies inside them.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

Objective = Callable[[jax.Array], jax.Array]
ACTION_LOW = -1.0
ACTION_HIGH = 1.0


@struct.dataclass
class PlannerState:
    """Warm start of a sampling/gradient planner.

    mean: [H, A] the action sequence the next `plan` starts from (after `shift`).
    std: [H, A] the sampling std the next `plan` starts from.
    """

    mean: jax.Array
    std: jax.Array


class Planner(NamedTuple):
    """Function bundle returned by every `make_<planner>(config)`; see the module docstring."""

    init: Callable[[int, jax.Array], Any]
    plan: Callable[[Any, Objective, Any, jax.Array], tuple[jax.Array, Any, dict]]
    shift: Callable[[Any, Any], Any]


# ----------------------------------------------------------------------------- validation helpers


def check_positive_int(config: Any, name: str) -> None:
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            f"{type(config).__name__}.{name}={value!r} is invalid: allowed is an int >= 1"
        )


def check_range(
    config: Any,
    name: str,
    low: float,
    high: float,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    value = getattr(config, name)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        ok = (value > low if low_open else value >= low) and (
            value < high if high_open else value <= high
        )
    if not ok:
        lb = "(" if low_open else "["
        rb = ")" if high_open else "]"
        raise ValueError(
            f"{type(config).__name__}.{name}={value!r} is invalid: allowed is a number in "
            f"{lb}{low}, {high}{rb}"
        )


def check_choice(config: Any, name: str, allowed: tuple[str, ...]) -> None:
    value = getattr(config, name)
    if value not in allowed:
        raise ValueError(
            f"{type(config).__name__}.{name}={value!r} is invalid: allowed are {list(allowed)}"
        )


def check_bool(config: Any, name: str) -> None:
    value = getattr(config, name)
    if not isinstance(value, bool):
        raise ValueError(f"{type(config).__name__}.{name}={value!r} is invalid: allowed is a bool")


def check_std_bounds(config: Any) -> None:
    """init_std must lie in [min_std, max_std]; min_std > 0 keeps truncated sampling finite."""
    check_range(config, "min_std", 0.0, float("inf"), low_open=True, high_open=True)
    check_range(config, "max_std", 0.0, float("inf"), low_open=True, high_open=True)
    check_range(config, "init_std", 0.0, float("inf"), low_open=True, high_open=True)
    if not config.min_std <= config.init_std <= config.max_std:
        raise ValueError(
            f"{type(config).__name__}: need min_std <= init_std <= max_std, got "
            f"min_std={config.min_std}, init_std={config.init_std}, max_std={config.max_std}"
        )


def replace_config(config: Any, **overrides: Any) -> Any:
    """`dataclasses.replace` with an error naming unknown fields (instead of a TypeError)."""
    names = {f.name for f in dataclasses.fields(config)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ValueError(
            f"unknown {type(config).__name__} field(s) {unknown}: allowed are {sorted(names)}"
        )
    return dataclasses.replace(config, **overrides)


# ----------------------------------------------------------------------------- runtime helpers


def init_state(horizon: int, action_size: int, init_std: float) -> PlannerState:
    """Zero mean (the middle of [-1, 1]) and `init_std` everywhere: mean/std [H, A]."""
    if isinstance(action_size, bool) or not isinstance(action_size, int) or action_size < 1:
        raise ValueError(f"action_size={action_size!r} is invalid: allowed is an int >= 1")
    return PlannerState(
        mean=jnp.zeros((horizon, action_size), jnp.float32),
        std=jnp.full((horizon, action_size), init_std, jnp.float32),
    )


def shift_sequence(x: jax.Array, steps: Any, fill: Any) -> jax.Array:
    """Shift `x` [..., H, A] left by `steps` along H, filling the tail with `fill`.

    `steps` may be traced: out[t] = x[t + steps] if t + steps < H else fill.
    """
    horizon = x.shape[-2]
    src = jnp.arange(horizon) + jnp.asarray(steps, jnp.int32)
    valid = (src < horizon)[:, None]
    shifted = jnp.take(x, jnp.minimum(src, horizon - 1), axis=-2)
    return jnp.where(valid, shifted, jnp.asarray(fill, x.dtype))


def make_state_shift(init_std: float) -> Callable[[PlannerState, Any], PlannerState]:
    """`shift` for planners whose state is a plain `PlannerState`."""

    def shift(state: PlannerState, steps: Any) -> PlannerState:
        return state.replace(
            mean=shift_sequence(state.mean, steps, 0.0),
            std=shift_sequence(state.std, steps, init_std),
        )

    return shift


def evaluate(objective: Objective, actions: jax.Array) -> jax.Array:
    """Total returns [N] of candidates [N, H, A]; NaN returns become -inf so they are never chosen.

    Accepts objectives returning [N] or per-step rewards [N, H] (summed here).
    """
    returns = objective(actions)
    returns = check_returns(returns, actions)
    if returns.ndim == 2:
        returns = returns.sum(axis=-1)
    return jnp.where(jnp.isnan(returns), -jnp.inf, returns)


def check_returns(returns: jax.Array, actions: jax.Array) -> jax.Array:
    """Static shape check at trace time: a clear error instead of a broadcast deep inside XLA."""
    returns = jnp.asarray(returns)
    n, h = actions.shape[0], actions.shape[1]
    if returns.shape not in ((n,), (n, h)):
        raise ValueError(
            f"objective returned shape {returns.shape} for actions {actions.shape}: allowed are "
            f"({n},) total returns or ({n}, {h}) per-step rewards"
        )
    return returns


def clip_actions(x: jax.Array) -> jax.Array:
    return jnp.clip(x, ACTION_LOW, ACTION_HIGH)


def check_state(state: PlannerState, horizon: int) -> None:
    if state.mean.ndim != 2 or state.mean.shape[0] != horizon:
        raise ValueError(
            f"planner state mean has shape {state.mean.shape}: expected [H={horizon}, A]; "
            "vmap `plan` over the batch axis instead of passing batched states"
        )


def sample_gaussian(
    key: jax.Array, mean: jax.Array, std: jax.Array, num: int, truncated: bool
) -> jax.Array:
    """num samples [num, H, A] around mean/std [H, A], inside [-1, 1].

    truncated=True draws from the normal truncated to the bounds (PETS); otherwise samples are
    drawn unbounded and clipped (iCEM), which puts mass exactly on the bounds.
    """
    shape = (num,) + mean.shape
    if truncated:
        lower = (ACTION_LOW - mean) / std
        upper = (ACTION_HIGH - mean) / std
        z = jax.random.truncated_normal(key, lower, upper, shape, mean.dtype)
        # The clip guards the inverse-CDF's rounding in the far tails.
        return clip_actions(mean + std * z)
    return clip_actions(mean + std * jax.random.normal(key, shape, mean.dtype))
