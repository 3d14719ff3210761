"""The dynamics-model protocol: what `mbjax.rollout` (and so planners and learners) may use.

A model is a bundle of pure functions over its own state pytree. Nothing outside `models/`
reads a model's internals (params, normalizers, elites): propagation, `imagine` and planning
problems go through these attributes only.

    model.state_size      S: size of the vector the model steps (the observation for
                          observation models; a flat latent for latent models)
    model.action_size     A
    model.num_members     M: members on the member axis of `step` (an ensemble's E; 1 for a
                          single network or a GP; a BNN's posterior samples)
    model.num_elites      K <= M: members used when a caller asks for elites (M where nothing
                          ranks the members)
    model.has_reward      whether `step` returns a reward (a reward head)
    model.has_termination whether `step` returns a termination probability
    model.init(key) -> state
    model.fit(state, data, key) -> (state, metrics)
        data: a `mbjax.replay.ReplayBuffer` of `Transition`s (leaves [C, ...], traced size).
        metrics must hold the scalars `train_loss`, `holdout_loss` (what learners log) and
        `nonfinite` (bool: NaN/Inf met while fitting that the fit could not mask); anything
        else is model-specific. A fit should mask data rows holding NaN/Inf rather than let
        them reach its state (the ensemble does, and counts them in `num_nonfinite_rows`).
    model.step(state, x [M', R, S], action [M', R, A], key | None, members [M'] | None)
        -> ModelStep over [M', R]: slice m of the member axis goes through member members[m]
        (members None: all M members in order, M' = M). key None: the mean prediction (no
        aleatoric noise); a key: one sample per row.
    model.elites(state) -> [K] int32: the members to prefer (arange(M) where nothing ranks).
    model.observation_shape  optional: the shape of the observations `fit` reads, for a model
        whose x is not the observation (a latent model); absent: [S].
    model.noise_size      optional int D: a model declaring D > 0 also takes, in place of the
        key, standard normals [M', R, D] (float) and uses them exactly as those the key would
        draw (`jax.random.normal(key, (M', R, D))`); propagation then draws a whole horizon's
        noise in one call outside its loops. Absent or 0: `step` gets a key per step.

Everything is static Python (sizes, flags) or a pure jittable function, so a model passes
through `jit`/`vmap` like any function bundle. The ensemble (`make_ensemble`) is one
implementation; `docs/examples/linear_model.py` is a linear model written against this
protocol alone, which runs through PETS and MBPO unchanged. A recurrent latent model fits by keeping
its filter in the agent: the agent encodes observations into the latent `x` it plans from.
The `moment_matching` propagation mode needs nothing more: it refits each candidate's
particles to a Gaussian between `step`s. A GP (`mbjax.models.gp`) also offers an optional
`predict_moments` (closed-form moment matching of a Gaussian input), which PILCO uses.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Protocol, runtime_checkable

import jax
import jax.numpy as jnp

from mbjax import validation
from mbjax.models.state import ModelStep

FIT_SCALARS = ("train_loss", "holdout_loss", "nonfinite")
PROTOCOL_ATTRIBUTES = (
    "state_size", "action_size", "num_members", "num_elites", "has_reward", "has_termination",
    "init", "fit", "step", "elites",
)


@runtime_checkable
class DynamicsModel(Protocol):
    """See the module docstring for the meaning and shapes of each attribute."""

    state_size: int
    action_size: int
    num_members: int
    num_elites: int
    has_reward: bool
    has_termination: bool
    init: Callable[[jax.Array], Any]
    fit: Callable[..., tuple[Any, dict[str, jax.Array]]]
    step: Callable[..., ModelStep]
    elites: Callable[[Any], jax.Array]


class FitMetrics(NamedTuple):
    """A model fit's scalars: mean MSE over the elites (train / holdout), NaN/Inf met."""

    train_loss: jax.Array
    holdout_loss: jax.Array
    nonfinite: jax.Array

    @classmethod
    def none(cls) -> "FitMetrics":
        """For episodes without a fit: NaN losses, nothing non-finite."""
        nan = jnp.full((), jnp.nan, jnp.float32)
        return cls(nan, nan, jnp.zeros((), bool))

    @classmethod
    def of(cls, fit_info: dict) -> "FitMetrics":
        """From the metrics of `model.fit` (the dynamics-model protocol's scalars)."""
        return cls(fit_info["train_loss"], fit_info["holdout_loss"], fit_info["nonfinite"])


def check_model(model: Any, where: str = "model", deep: bool = False) -> None:
    """Raises ValueError naming what is missing if `model` does not implement the protocol.

    deep: also trace `init`, `step` and `fit` abstractly (`jax.eval_shape`, nothing runs) and
    check what they return: a ModelStep of the right shapes with the heads the model declares,
    and fit metrics with the protocol's scalars.
    """
    missing = [name for name in PROTOCOL_ATTRIBUTES if not hasattr(model, name)]
    if missing:
        raise ValueError(
            f"{where}: {type(model).__name__} does not implement the dynamics-model protocol "
            f"(mbjax.models.base); missing: {', '.join(missing)}"
        )
    for name in ("state_size", "action_size", "num_members"):
        validation.check_int(f"{where}: {name}", getattr(model, name))
    validation.check_int(f"{where}: num_elites", model.num_elites, 1, model.num_members)
    if deep:
        _check_outputs(model, where)


def _check_outputs(model: Any, where: str) -> None:
    from mbjax import acting, replay  # lazy: sibling utilities, needed only for this check

    m, s, a = model.num_members, model.state_size, model.action_size
    key = jax.random.PRNGKey(0)
    state = jax.eval_shape(model.init, key)
    x, u = jnp.zeros((m, 2, s)), jnp.zeros((m, 2, a))
    out = jax.eval_shape(lambda st, k: model.step(st, x, u, k, None), state, key)
    expected = {"next_obs": (m, 2, s), "reward": (m, 2) if model.has_reward else None,
                "termination_prob": (m, 2) if model.has_termination else None}
    if not isinstance(out, ModelStep):
        raise ValueError(f"{where}: step must return a ModelStep, got {type(out).__name__}")
    for field, shape in expected.items():
        got = getattr(out, field)
        got = None if got is None else tuple(got.shape)
        if got != shape:
            raise ValueError(
                f"{where}: step(x [{m}, 2, {s}], action [{m}, 2, {a}]).{field} has shape {got}; "
                f"expected {shape} (has_reward={model.has_reward}, "
                f"has_termination={model.has_termination})"
            )
    # A latent model steps latents but fits on observations: it names their shape in
    # `observation_shape` (optional; default: the observations are the state, [S]).
    obs_shape = getattr(model, "observation_shape", s)
    buffer = jax.eval_shape(lambda: replay.init(8, acting.empty_transition(obs_shape, a)))
    _, metrics = jax.eval_shape(model.fit, state, buffer, key)
    missing = [k for k in FIT_SCALARS if k not in metrics]
    if missing:
        raise ValueError(
            f"{where}: fit's metrics lack {missing}; the protocol needs the scalars {FIT_SCALARS}"
        )


def check_model_matches(
    model: Any, obs_size: int, action_size: int, where: str, *, needs_reward: bool = False,
    needs_termination: bool = False, deep: bool = True,
) -> None:
    """check_model (deep: with its outputs traced abstractly), a model stepping observations of
    the env's sizes, and the heads a learner asks for (learned reward / termination)."""
    check_model(model, where, deep=deep)
    for needed, has, head in ((needs_reward, model.has_reward, "reward"),
                              (needs_termination, model.has_termination, "termination")):
        if needed and not has:
            raise ValueError(
                f"{where}: learned_{head}=True needs a model with a {head} head; "
                f"{type(model).__name__} has none"
            )
    if (model.state_size, model.action_size) != (obs_size, action_size):
        raise ValueError(
            f"{where}: the model steps states of size {model.state_size} with actions of size "
            f"{model.action_size}; the env has observations of size {obs_size} and actions of "
            f"size {action_size}"
        )
