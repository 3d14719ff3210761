"""Gradient planners: Adam on action sequences through a differentiable objective, and a CEM +
gradient refinement hybrid (CEM finds the basin, a few Adam steps polish the top elites).

Hyperparameters as leaves: the Adam `learning_rate` (and, for CEM + gradient, CEM's `alpha`) are
float32 leaves of the state (`state.hparams`: `GradientHParams` / `CEMGradientHParams`); the
traced rate goes straight into `optax.adam`, which only multiplies the update by it. A grid over
them is a vmap without recompiling:

    state = planner.init(action_size, key)
    grid = jax.vmap(
        lambda lr: planner.plan(base.with_hparams(state, learning_rate=lr), problem, obs, key)
    )
    actions, states, info = grid(jnp.array([0.01, 0.05, 0.1]))        # actions: [3, H, A]

Restarts, steps, `parameterization` and `init_std` stay static config.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from mbjax import validation
from mbjax.planners import base
from mbjax.planners.cem import CEMConfig, run_cem

_PARAMETERIZATIONS = ("tanh", "clip")
_TANH_EDGE = 1.0 - 1e-4  # arctanh(+-1) is infinite; start just inside the bounds


@dataclasses.dataclass(frozen=True)
class GradientConfig:
    """Adam on the action sequence; the returned plan is the best sequence seen.

    horizon: H (static). num_restarts: R sequences optimised in parallel; restart 0 is the
      warm start (when include_warm_start), the others start at warm start + init_std noise.
    steps: Adam steps (a `lax.scan`). learning_rate: Adam step size in parameter space (the
      default of `state.hparams.learning_rate`).
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
            validation.field_int(self, name)
        validation.field_float(self, "learning_rate", 0.0, lo_open=True)
        validation.field_choice(self, "parameterization", _PARAMETERIZATIONS)
        validation.field_float(self, "init_std", 0.0)
        validation.field_bool(self, "include_warm_start")

    @property
    def trajectories_per_plan(self) -> int:
        """Forward evaluations (each also has a backward pass except the last)."""
        return self.num_restarts * (self.steps + 1)


@struct.dataclass
class GradientHParams:
    """The gradient planner's numeric hyperparameters in the state: learning_rate [] float32."""

    learning_rate: jax.Array


@struct.dataclass
class CEMGradientHParams:
    """CEM + gradient's numeric hyperparameters in the state, float32 []: alpha (the CEM stage's
    momentum, `CEMGradientConfig.cem.alpha`) and learning_rate (the refinement's)."""

    alpha: jax.Array
    learning_rate: jax.Array


class RefineResult(NamedTuple):
    """best_actions [H, A], best_return [], per-step best return [steps + 1]."""

    best_actions: jax.Array
    best_return: jax.Array
    step_best_return: jax.Array


class AdamCarry(NamedTuple):
    """The `lax.scan` carry of `adam_refine`: parameters z [R, H, A], Adam's state, and the best
    sequence [H, A] / return [] seen so far."""

    z: jax.Array
    opt_state: Any
    best_actions: jax.Array
    best_return: jax.Array


def adam_refine(
    objective: base.Objective,
    actions: jax.Array,
    steps: int,
    learning_rate: jax.Array,
    parameterization: str,
) -> RefineResult:
    """Run Adam on R sequences [R, H, A] at once; returns the best sequence seen at any step.

    learning_rate: [] (may be traced). The loss is -sum_r R(a_r): Adam is element-wise, so the
    restarts do not interact. Non-finite gradients (e.g. from a diverging model) are zeroed
    instead of poisoning z.
    """
    if parameterization == "tanh":
        to_actions = jnp.tanh
        z0 = jnp.arctanh(jnp.clip(actions, -_TANH_EDGE, _TANH_EDGE))
    else:
        to_actions = base.clip_actions
        z0 = base.clip_actions(actions)
    # A traced rate is fine: adam's last stage only multiplies the update by -learning_rate.
    opt = optax.adam(learning_rate)

    def loss(z):
        a = to_actions(z)
        r = base.check_returns(objective(a), a)
        r = r.sum(axis=1) if r.ndim == 2 else r
        return -jnp.sum(r), r

    def track(best_a, best_r, a, r):
        r = jnp.where(jnp.isnan(r), -jnp.inf, r)
        i = jnp.argmax(r)
        return base.update_best(best_a, best_r, a[i], r[i])

    def step(carry: AdamCarry, _) -> tuple[AdamCarry, jax.Array]:
        (_, r), g = jax.value_and_grad(loss, has_aux=True)(carry.z)
        best_a, best_r = track(carry.best_actions, carry.best_return, to_actions(carry.z), r)
        g = jnp.where(jnp.isfinite(g), g, 0.0)
        updates, opt_state = opt.update(g, carry.opt_state, carry.z)
        z = optax.apply_updates(carry.z, updates)
        if parameterization == "clip":
            z = base.clip_actions(z)
        return AdamCarry(z, opt_state, best_a, best_r), best_r

    init = AdamCarry(
        z=z0,
        opt_state=opt.init(z0),
        best_actions=base.clip_actions(actions[0]),
        best_return=jnp.asarray(-jnp.inf, actions.dtype),
    )
    final, trace = jax.lax.scan(step, init, None, length=steps)
    _, r = loss(final.z)
    best_a, best_r = track(final.best_actions, final.best_return, to_actions(final.z), r)
    return RefineResult(best_a, best_r, jnp.append(trace, best_r))


def make_gradient(config: GradientConfig) -> base.Planner:
    """Gradient (Adam) planner with random restarts; state is a `PlannerState` (hparams
    `GradientHParams`).

    The objective must be differentiable in the actions (a learned model or a pure-JAX env).
    """
    cfg = config

    def plan(
        state: base.PlannerState, problem: base.Problem, obs: Any, key: jax.Array
    ) -> tuple[jax.Array, base.PlannerState, dict]:
        """Returns (actions [H, A], state with mean = returned actions, info)."""
        del obs
        mean = base.warm_mean(state, cfg.horizon)
        noise = jax.random.normal(key, (cfg.num_restarts,) + mean.shape, mean.dtype)
        starts = base.clip_actions(mean + cfg.init_std * noise)
        if cfg.include_warm_start:
            starts = starts.at[0].set(mean)
        res = adam_refine(
            base.objective_of(problem),
            starts,
            cfg.steps,
            state.hparams.learning_rate,
            cfg.parameterization,
        )
        info = {"best_return": res.best_return, "step_best_return": res.step_best_return}
        return res.best_actions, state.replace(mean=res.best_actions), info

    init = base.make_init(
        cfg.horizon, cfg.init_std, GradientHParams(learning_rate=cfg.learning_rate)
    )
    return base.Planner(init=init, plan=plan, shift=base.make_state_shift(cfg.init_std))


@dataclasses.dataclass(frozen=True)
class CEMGradientConfig:
    """CEM followed by Adam refinement of `num_refine` sequences: CEM's final mean and its
    `num_refine - 1` best final elites.

    cem: the CEM stage (its horizon is the planner's horizon). num_refine: sequences refined
    (<= cem.num_elites). steps, learning_rate, parameterization: as in `GradientConfig`.
    cem.alpha and learning_rate are the defaults of `state.hparams` (`CEMGradientHParams`).
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
            raise validation.field_error(self, "cem", "a CEMConfig")
        validation.field_int(self, "num_refine")
        if self.num_refine > self.cem.num_elites:
            raise validation.field_error(
                self, "num_refine", f"an int in [1, cem.num_elites={self.cem.num_elites}]"
            )
        validation.field_int(self, "steps")
        validation.field_float(self, "learning_rate", 0.0, lo_open=True)
        validation.field_choice(self, "parameterization", _PARAMETERIZATIONS)

    @property
    def horizon(self) -> int:
        return self.cem.horizon

    @property
    def trajectories_per_plan(self) -> int:
        return self.cem.trajectories_per_plan + self.num_refine * (self.steps + 1)


def make_cem_gradient(config: CEMGradientConfig) -> base.Planner:
    """CEM + gradient refinement planner; state is a `PlannerState` (hparams
    `CEMGradientHParams`)."""
    cfg = config
    ccfg = cfg.cem

    def plan(
        state: base.PlannerState, problem: base.Problem, obs: Any, key: jax.Array
    ) -> tuple[jax.Array, base.PlannerState, dict]:
        """Returns (actions [H, A], state with mean = returned actions, info)."""
        del obs
        objective = base.objective_of(problem)
        res = run_cem(ccfg, state, objective, key)
        cem = res.final
        # Elites come sorted by return (top_k); CEM's final mean is refined alongside them.
        starts = jnp.concatenate([cem.mean[None], cem.elites[: cfg.num_refine - 1]], axis=0)
        ref = adam_refine(
            objective, starts, cfg.steps, state.hparams.learning_rate, cfg.parameterization
        )
        use_ref = ref.best_return >= cem.best_return
        actions = jnp.where(use_ref, ref.best_actions, cem.best_actions)
        info = dict(
            res.info,
            best_return=jnp.maximum(ref.best_return, cem.best_return),
            cem_best_return=cem.best_return,
            refine_step_best_return=ref.step_best_return,
        )
        return actions, state.replace(mean=actions, std=res.next_std), info

    hparams = CEMGradientHParams(alpha=ccfg.alpha, learning_rate=cfg.learning_rate)
    init = base.make_init(ccfg.horizon, ccfg.init_std, hparams)
    return base.Planner(init=init, plan=plan, shift=base.make_state_shift(ccfg.init_std))
