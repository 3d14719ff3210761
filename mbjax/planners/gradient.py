"""Gradient planners: Adam on action sequences through a differentiable objective, and a CEM +
gradient refinement hybrid (CEM finds the basin, a few Adam steps polish the top elites)."""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from mbjax.planners import base
from mbjax.planners.cem import CEMConfig, cem_iterations

_PARAMETERIZATIONS = ("tanh", "clip")
_TANH_EDGE = 1.0 - 1e-4  # arctanh(+-1) is infinite; start just inside the bounds


@dataclasses.dataclass(frozen=True)
class GradientConfig:
    """Adam on the action sequence; the returned plan is the best sequence seen.

    horizon: H (static). num_restarts: R sequences optimised in parallel; restart 0 is the
      warm start (when include_warm_start), the others start at warm start + init_std noise.
    steps: Adam steps (a `lax.scan`). learning_rate: Adam step size in parameter space.
    parameterization: "tanh" (actions = tanh(z), unconstrained z) or "clip" (projected Adam:
      z is clipped to [-1, 1] after each step, actions = z).
    init_std: spread of the random restarts around the warm start.
    """

    horizon: int = 25
    num_restarts: int = 8
    steps: int = 50
    learning_rate: float = 0.05
    parameterization: str = "tanh"
    init_std: float = 0.5
    include_warm_start: bool = True

    def __post_init__(self) -> None:
        for name in ("horizon", "num_restarts", "steps"):
            base.check_positive_int(self, name)
        base.check_range(self, "learning_rate", 0.0, float("inf"), low_open=True, high_open=True)
        base.check_choice(self, "parameterization", _PARAMETERIZATIONS)
        base.check_range(self, "init_std", 0.0, float("inf"), high_open=True)
        base.check_bool(self, "include_warm_start")

    @property
    def trajectories_per_plan(self) -> int:
        """Forward evaluations (each also has a backward pass except the last)."""
        return self.num_restarts * (self.steps + 1)


class RefineResult(NamedTuple):
    """best_actions [H, A], best_return [], per-step best return [steps + 1]."""

    best_actions: jax.Array
    best_return: jax.Array
    step_best_return: jax.Array


def adam_refine(
    objective: base.Objective,
    actions: jax.Array,
    steps: int,
    learning_rate: float,
    parameterization: str,
) -> RefineResult:
    """Run Adam on R sequences [R, H, A] at once; returns the best sequence seen at any step.

    The loss is -sum_r R(a_r): Adam is element-wise, so the restarts do not interact.
    Non-finite gradients (e.g. from a diverging model) are zeroed instead of poisoning z.
    """
    if parameterization == "tanh":
        to_actions = jnp.tanh
        z0 = jnp.arctanh(jnp.clip(actions, -_TANH_EDGE, _TANH_EDGE))
    else:
        to_actions = base.clip_actions
        z0 = base.clip_actions(actions)
    opt = optax.adam(learning_rate)

    def loss(z):
        a = to_actions(z)
        r = base.check_returns(objective(a), a)
        r = r.sum(axis=1) if r.ndim == 2 else r
        return -jnp.sum(r), r

    def track(best_a, best_r, a, r):
        r = jnp.where(jnp.isnan(r), -jnp.inf, r)
        i = jnp.argmax(r)
        better = r[i] > best_r
        return jnp.where(better, a[i], best_a), jnp.where(better, r[i], best_r)

    def step(carry, _):
        z, opt_state, best_a, best_r = carry
        (_, r), g = jax.value_and_grad(loss, has_aux=True)(z)
        best_a, best_r = track(best_a, best_r, to_actions(z), r)
        g = jnp.where(jnp.isfinite(g), g, 0.0)
        updates, opt_state = opt.update(g, opt_state, z)
        z = optax.apply_updates(z, updates)
        if parameterization == "clip":
            z = base.clip_actions(z)
        return (z, opt_state, best_a, best_r), best_r

    init = (z0, opt.init(z0), base.clip_actions(actions[0]), jnp.asarray(-jnp.inf, actions.dtype))
    (z, _, best_a, best_r), trace = jax.lax.scan(step, init, None, length=steps)
    _, r = loss(z)
    best_a, best_r = track(best_a, best_r, to_actions(z), r)
    return RefineResult(best_a, best_r, jnp.append(trace, best_r))


def make_gradient(config: GradientConfig) -> base.Planner:
    """Gradient (Adam) planner with random restarts; state is a `PlannerState`.

    The objective must be differentiable in the actions (a learned model or a pure-JAX env).
    """
    cfg = config

    def init(action_size: int, key: jax.Array) -> base.PlannerState:
        del key
        return base.init_state(cfg.horizon, action_size, cfg.init_std)

    def plan(
        state: base.PlannerState, objective: base.Objective, obs: Any, key: jax.Array
    ) -> tuple[jax.Array, base.PlannerState, dict]:
        """Returns (actions [H, A], state with mean = returned actions, info)."""
        del obs
        base.check_state(state, cfg.horizon)
        mean = base.clip_actions(state.mean)
        noise = jax.random.normal(key, (cfg.num_restarts,) + mean.shape, mean.dtype)
        starts = base.clip_actions(mean + cfg.init_std * noise)
        if cfg.include_warm_start:
            starts = starts.at[0].set(mean)
        res = adam_refine(
            objective, starts, cfg.steps, cfg.learning_rate, cfg.parameterization
        )
        info = {"best_return": res.best_return, "step_best_return": res.step_best_return}
        return res.best_actions, state.replace(mean=res.best_actions), info

    return base.Planner(init=init, plan=plan, shift=base.make_state_shift(cfg.init_std))


@dataclasses.dataclass(frozen=True)
class CEMGradientConfig:
    """CEM followed by Adam refinement of `num_refine` sequences: CEM's final mean and its
    `num_refine - 1` best final elites.

    cem: the CEM stage (its horizon is the planner's horizon). num_refine: sequences refined
    (<= cem.num_elites). steps, learning_rate, parameterization: as in `GradientConfig`.
    The returned plan is the better of CEM's best sample and the best refined sequence; the
    warm start for the next plan is that returned plan.
    """

    cem: CEMConfig = CEMConfig()
    num_refine: int = 5
    steps: int = 10
    learning_rate: float = 0.01
    parameterization: str = "clip"

    def __post_init__(self) -> None:
        if not isinstance(self.cem, CEMConfig):
            raise ValueError(
                f"CEMGradientConfig.cem={self.cem!r} is invalid: allowed is a CEMConfig"
            )
        base.check_positive_int(self, "num_refine")
        if self.num_refine > self.cem.num_elites:
            raise ValueError(
                f"CEMGradientConfig.num_refine={self.num_refine} is invalid: allowed is 1 <= "
                f"num_refine <= cem.num_elites={self.cem.num_elites}"
            )
        base.check_positive_int(self, "steps")
        base.check_range(self, "learning_rate", 0.0, float("inf"), low_open=True, high_open=True)
        base.check_choice(self, "parameterization", _PARAMETERIZATIONS)

    @property
    def horizon(self) -> int:
        return self.cem.horizon

    @property
    def trajectories_per_plan(self) -> int:
        return self.cem.trajectories_per_plan + self.num_refine * (self.steps + 1)


def make_cem_gradient(config: CEMGradientConfig) -> base.Planner:
    """CEM + gradient refinement planner; state is a `PlannerState`."""
    cfg = config
    ccfg = cfg.cem

    def init(action_size: int, key: jax.Array) -> base.PlannerState:
        del key
        return base.init_state(ccfg.horizon, action_size, ccfg.init_std)

    def plan(
        state: base.PlannerState, objective: base.Objective, obs: Any, key: jax.Array
    ) -> tuple[jax.Array, base.PlannerState, dict]:
        """Returns (actions [H, A], state with mean = returned actions, info)."""
        del obs
        base.check_state(state, ccfg.horizon)
        mean = base.clip_actions(state.mean)
        std = jnp.clip(state.std, ccfg.min_std, ccfg.max_std)
        res = cem_iterations(ccfg, mean, std, objective, key)
        # Elites come sorted by return (top_k); CEM's final mean is refined alongside them.
        starts = jnp.concatenate([res.mean[None], res.elites[: cfg.num_refine - 1]], axis=0)
        ref = adam_refine(objective, starts, cfg.steps, cfg.learning_rate, cfg.parameterization)
        use_ref = ref.best_return >= res.best_return
        actions = jnp.where(use_ref, ref.best_actions, res.best_actions)
        best = jnp.maximum(ref.best_return, res.best_return)
        next_std = res.std if ccfg.keep_std else jnp.full_like(res.std, ccfg.init_std)
        info = dict(
            res.info,
            best_return=best,
            cem_best_return=res.best_return,
            refine_step_best_return=ref.step_best_return,
        )
        return actions, state.replace(mean=actions, std=next_std), info

    return base.Planner(init=init, plan=plan, shift=base.make_state_shift(ccfg.init_std))
