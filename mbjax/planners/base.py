"""The planner protocol shared by every planner, plus small helpers they all use.

A planner is `Planner(init, plan, shift)`:

- `init(action_size, key, hparams=None) -> state`: the initial warm start (mean [H, A] = 0,
  std [H, A] = `config.init_std`, plus per-planner extras) and the planner's numeric
  hyperparameters `state.hparams` (see below): the config's values, or `hparams` (the planner's
  hyperparameter dataclass, e.g. a learner state's copy that a grid sets per cell; extras that
  depend on them, such as iCEM's first elites, use these). The horizon H is static config.
- `plan(state, problem, obs, key) -> (actions [H, A], state, info)`: optimise an action sequence.
  `problem` is either an objective callable `objective(actions: [N, H, A]) -> returns: [N]`
  (higher is better; `[N, H]` per-step rewards are also accepted and summed over H, MPPI can use
  them for per-step weights) or any object with such an `.objective` attribute (e.g. a
  `PlanningProblem`, which also carries dynamics for model-based planners); `objective_of`
  tells them apart. `obs` is passed through for planners that want it and is unused by the
  planners here. The returned `state` holds the solution of THIS call, aligned with the
  returned `actions` (not yet shifted).
- `shift(state, steps) -> state`: advance the warm start after `steps` actions were executed:
  `mean[t] <- mean[t + steps]`, the last `steps` entries refilled with the initial mean/std. MPC
  that replans every step calls `shift(state, 1)`; one that executes `k` actions per plan calls
  `shift(state, k)`. `steps` may be a traced integer (it is applied with a gather, not a slice).
  `state.hparams` is kept as is.

Hyperparameters as leaves. Numeric hyperparameters (CEM's `alpha`, MPPI's `inverse_temperature`,
...) are float32 scalars in `state.hparams`, a small `flax.struct.dataclass` that `init` fills
from the config (the config values are the defaults); `plan` reads them from the state and
`shift` keeps them. Changing them therefore never retraces a jitted `plan`, and a grid over them
is a `vmap`: build the states, replace the hparams by a batch, vmap `plan`:

    state = planner.init(action_size, key)
    states = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (3,) + x.shape), state)
    states = with_hparams(states, alpha=jnp.array([0.05, 0.1, 0.2]))    # hparams.alpha: [3]
    plan_grid = jax.vmap(lambda s: planner.plan(s, problem, obs, key))   # problem/obs/key shared
    actions, states, info = plan_grid(states)                            # actions: [3, H, A]

or, from one state, `jax.vmap(lambda a: planner.plan(with_hparams(state, alpha=a), ...))(alphas)`.
Values set this way are not validated (they may be traced): the config checks its defaults only.
Structural choices (horizon, population, iterations, sampling mode, ...) stay static config.

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

from mbjax import validation

Objective = Callable[[jax.Array], jax.Array]
# An objective, or an object with an `.objective` attribute (e.g. mbjax's PlanningProblem).
Problem = Any
ACTION_LOW = -1.0
ACTION_HIGH = 1.0


@struct.dataclass
class PlannerState:
    """Warm start of a sampling/gradient planner.

    mean: [H, A] the action sequence the next `plan` starts from (after `shift`).
    std: [H, A] the sampling std the next `plan` starts from.
    hparams: the planner's numeric hyperparameters, float32 scalars [] (a per-planner
      `flax.struct.dataclass`; None for planners without any).
    """

    mean: jax.Array
    std: jax.Array
    hparams: Any = None


class Planner(NamedTuple):
    """Function bundle returned by every `make_<planner>(config)`; see the module docstring."""

    init: Callable[..., Any]  # (action_size, key, hparams=None) -> state
    plan: Callable[[Any, Problem, Any, jax.Array], tuple[jax.Array, Any, dict]]
    shift: Callable[[Any, Any], Any]


def objective_of(problem: Problem) -> Objective:
    """The objective `actions [N, H, A] -> returns [N] or [N, H]` of a planning problem.

    `problem` is an objective callable or an object with an `.objective` attribute (duck-typed,
    so planners need not import `mbjax.rollout`). The attribute wins: a callable problem object
    that also has `.objective` is planned through `.objective`.
    """
    objective = getattr(problem, "objective", problem)
    if not callable(objective):
        raise validation.invalid(
            "problem", problem, "an objective callable or an object with a callable `.objective`"
        )
    return objective


# ----------------------------------------------------------------------------- hyperparameters


def float_leaves(tree: Any) -> Any:
    """`tree` with every leaf a float32 array (Python numbers -> [] arrays).

    One dtype for every value keeps jit from retracing when a Python float (weakly typed) is
    later replaced by a float32 array or the other way round.
    """
    return jax.tree_util.tree_map(lambda v: jnp.asarray(v, jnp.float32), tree)


def with_hparams(state: Any, **values: Any) -> Any:
    """`state` with the named `state.hparams` fields replaced by float32 `values`.

    Values may be traced or batched (e.g. alphas [G] for a grid over batched states [G, ...]).
    """
    hparams = state.hparams
    names = {f.name for f in dataclasses.fields(hparams)} if hparams is not None else set()
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(
            f"unknown hyperparameter(s) {unknown} for {type(hparams).__name__}; "
            f"allowed: {sorted(names)}"
        )
    return state.replace(hparams=hparams.replace(**float_leaves(values)))


# ----------------------------------------------------------------------------- validation helpers


def validate_std_bounds(config: Any) -> None:
    """min_std, max_std, init_std > 0 with min_std <= init_std <= max_std; min_std > 0 keeps
    truncated sampling finite."""
    for name in ("min_std", "max_std", "init_std"):
        validation.field_float(config, name, 0.0, lo_open=True)
    if not config.min_std <= config.init_std <= config.max_std:
        raise validation.field_error(
            config, "init_std", f"a number in [min_std={config.min_std}, max_std={config.max_std}]"
        )


def validate_elite_sampler(config: Any) -> None:
    """The fields CEM and iCEM share: sizes, num_elites <= population, alpha, std bounds."""
    for name in ("horizon", "population", "num_elites", "iterations"):
        validation.field_int(config, name)
    if config.num_elites > config.population:
        raise validation.field_error(
            config, "num_elites", f"an int in [1, population={config.population}]"
        )
    validation.field_float(config, "alpha", 0.0, 1.0, hi_open=True)
    validate_std_bounds(config)


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


def init_state(
    horizon: int, action_size: int, init_std: float, hparams: Any = None
) -> PlannerState:
    """Zero mean (the middle of [-1, 1]) and `init_std` everywhere: mean/std [H, A]; `hparams`
    become float32 leaves."""
    validation.check_int("action_size", action_size)
    return PlannerState(
        mean=jnp.zeros((horizon, action_size), jnp.float32),
        std=jnp.full((horizon, action_size), init_std, jnp.float32),
        hparams=float_leaves(hparams),
    )


def make_init(
    horizon: int, init_std: float, hparams: Any = None
) -> Callable[..., PlannerState]:
    """`init(action_size, key, hparams=None)` for planners whose state is a plain
    `PlannerState` (the key is unused).

    hparams: the config's values (Python floats) in the planner's hyperparameter dataclass,
    the defaults when `init` is given none; converted to arrays at `init` time.
    """
    defaults = hparams

    def init(action_size: int, key: jax.Array, hparams: Any = None) -> PlannerState:
        del key
        return init_state(horizon, action_size, init_std,
                          defaults if hparams is None else hparams)

    return init


def shift_sequence(x: jax.Array, steps: Any, fill: Any) -> jax.Array:
    """Shift `x` [..., H, A] left by `steps` along H, filling the tail with `fill`.

    `steps` may be traced: out[t] = x[t + steps] if t + steps < H else fill.
    """
    horizon = x.shape[-2]
    src = jnp.arange(horizon) + jnp.asarray(steps, jnp.int32)
    valid = (src < horizon)[:, None]
    shifted = jnp.take(x, jnp.minimum(src, horizon - 1), axis=-2)
    return jnp.where(valid, shifted, jnp.asarray(fill, x.dtype))


def make_state_shift(init_std: float) -> Callable[[Any, Any], Any]:
    """`shift` of mean/std [H, A] for any state with those fields (`hparams` and other fields are
    kept as they are)."""

    def shift(state: Any, steps: Any) -> Any:
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


def check_state(state: Any, horizon: int) -> None:
    """Static shape checks at trace time: mean [H, A] and scalar hyperparameters."""
    hint = "vmap `plan` over the batch axis instead of passing batched states"
    if state.mean.ndim != 2 or state.mean.shape[0] != horizon:
        raise ValueError(
            f"planner state mean has shape {state.mean.shape}: expected [H={horizon}, A]; {hint}"
        )
    for path, leaf in jax.tree_util.tree_leaves_with_path(state.hparams):
        if jnp.ndim(leaf) != 0:
            raise ValueError(
                f"planner hyperparameter hparams{jax.tree_util.keystr(path)} has shape "
                f"{jnp.shape(leaf)}: expected a scalar []; {hint}"
            )


def warm_mean(state: Any, horizon: int) -> jax.Array:
    """The checked warm start every `plan` begins from: `state.mean` [H, A] clipped to bounds
    (a user-edited or shifted mean may lie outside them)."""
    check_state(state, horizon)
    return clip_actions(state.mean)


def update_best(
    best_actions: jax.Array, best_return: jax.Array, actions: jax.Array, ret: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Keep (actions [H, A], ret []) if it beats (best_actions, best_return); ties keep the old."""
    better = ret > best_return
    return jnp.where(better, actions, best_actions), jnp.where(better, ret, best_return)


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
