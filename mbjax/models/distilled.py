"""An ensemble distilled into one network that predicts the ensemble's total predictive mean
and variance: `make_distilled(teacher, DistillConfig())`, a one-member dynamics model
(`mbjax.models.base`), so PETS and MBPO plan with it unchanged at a fraction of the ensemble's
cost.

`fit` first fits the teacher ensemble on the buffer as usual, then takes `fit_steps` Adam steps
moving a single Gaussian network (the ensemble's own network code with one member, sharing the
teacher's normalizers) onto the teacher's moments at uniformly sampled buffer rows, over the
teacher's elites:

    mean_t = mean_k mu_k,   var_t = mean_k sigma_k^2 + var_k mu_k     (aleatoric + epistemic)
    loss = |mu_s - mean_t|^2 + |log sigma_s^2 - log var_t|^2  (normalized target units, summed)
           (+ the binary cross-entropy to the members' mean termination probability)
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from mbjax import replay, validation
from mbjax.models.ensemble import Ensemble, make_ensemble
from mbjax.models.state import ModelState, ModelStep


@dataclasses.dataclass(frozen=True)
class DistillConfig:
    """The student: hidden_sizes (None: the teacher's), Adam `learning_rate`, `fit_steps` steps
    on batches of `batch_size` rows after every teacher fit."""

    hidden_sizes: tuple[int, ...] | None = None
    learning_rate: float = 1e-3
    batch_size: int = 256
    fit_steps: int = 1000

    def __post_init__(self) -> None:
        if self.hidden_sizes is not None:
            validation.field_int_tuple(self, "hidden_sizes")
        validation.field_float(self, "learning_rate", 0.0, lo_open=True)
        validation.field_int(self, "batch_size")
        validation.field_int(self, "fit_steps")


class DistilledState(NamedTuple):
    """teacher: the ensemble's ModelState; student: a one-member ModelState (the teacher's
    normalizers); opt_state: the student's Adam state."""

    teacher: ModelState
    student: ModelState
    opt_state: Any


class Distilled(NamedTuple):
    """The protocol attributes of a distilled ensemble (one member)."""

    teacher: Ensemble
    student: Ensemble
    state_size: int
    action_size: int
    num_members: int
    num_elites: int
    has_reward: bool
    has_termination: bool
    init: Any
    fit: Any
    step: Any
    elites: Any


def teacher_moments(teacher: Ensemble, state: ModelState, obs: jax.Array, action: jax.Array):
    """The elites' total mean and variance of the normalized target [B, D] (and the mean
    termination probability [B] or None) at obs [B, S], action [B, A]."""
    pred = teacher.apply(state.params, state.normalizer, obs, action)
    elites = teacher.elites(state)
    take = lambda x: None if x is None else x[elites]
    mean, logvar = take(pred.mean), take(pred.logvar)
    if pred.reward is not None:
        mean = jnp.concatenate([mean, take(pred.reward)[..., None]], axis=-1)
        logvar = jnp.concatenate([logvar, take(pred.reward_logvar)[..., None]], axis=-1)
    total_var = jnp.mean(jnp.exp(logvar), axis=0) + jnp.var(mean, axis=0)
    term = None
    if pred.termination_logit is not None:
        term = jnp.mean(jax.nn.sigmoid(take(pred.termination_logit)), axis=0)
    return jnp.mean(mean, axis=0), total_var, term


def _loss(student: Ensemble, params, normalizer, obs, action, mean_t, var_t, term_t):
    pred = student.apply(params, normalizer, obs, action)
    mean, logvar = pred.mean[0], pred.logvar[0]
    if pred.reward is not None:
        mean = jnp.concatenate([mean, pred.reward[0][..., None]], axis=-1)
        logvar = jnp.concatenate([logvar, pred.reward_logvar[0][..., None]], axis=-1)
    loss = jnp.mean(jnp.sum((mean - mean_t) ** 2 + (logvar - jnp.log(var_t)) ** 2, axis=-1))
    if term_t is not None:
        loss += jnp.mean(optax.sigmoid_binary_cross_entropy(pred.termination_logit[0], term_t))
    return loss


def make_distilled(teacher: Ensemble, config: DistillConfig = DistillConfig()) -> Distilled:
    """A one-network model distilled from the Gaussian ensemble `teacher` (`make_ensemble`)."""
    if not isinstance(teacher, Ensemble) or not teacher.config.probabilistic:
        raise ValueError("make_distilled: teacher must be a probabilistic ensemble "
                         "(make_ensemble with EnsembleConfig(probabilistic=True))")
    hidden = config.hidden_sizes or teacher.config.hidden_sizes
    student_cfg = dataclasses.replace(teacher.config, ensemble_size=1, num_elites=1,
                                      hidden_sizes=hidden)
    if isinstance(student_cfg.weight_decays, tuple):
        student_cfg = dataclasses.replace(student_cfg, weight_decays=0.0)
    student = make_ensemble(student_cfg, teacher.obs_size, teacher.action_size)
    optimizer = optax.adam(config.learning_rate)

    def init(key: jax.Array) -> DistilledState:
        k_t, k_s = jax.random.split(key)
        s = student.init(k_s)
        return DistilledState(teacher.init(k_t), s, optimizer.init(s.params))

    def fit(state: DistilledState, buffer: replay.ReplayBuffer, key: jax.Array):
        k_fit, k_steps = jax.random.split(key)
        t_state, metrics = teacher.fit(state.teacher, buffer, k_fit)
        norm = t_state.normalizer

        def step(carry, k):
            params, opt_state = carry
            batch = replay.sample(buffer, k, config.batch_size)
            obs, action = batch.obs.astype(jnp.float32), batch.action.astype(jnp.float32)
            mean_t, var_t, term_t = jax.lax.stop_gradient(
                teacher_moments(teacher, t_state, obs, action))
            loss, grads = jax.value_and_grad(
                lambda p: _loss(student, p, norm, obs, action, mean_t, var_t, term_t))(params)
            updates, opt_state = optimizer.update(grads, opt_state)
            return (optax.apply_updates(params, updates), opt_state), loss

        (params, opt_state), losses = jax.lax.scan(
            step, (state.student.params, state.opt_state),
            jax.random.split(k_steps, config.fit_steps))
        s_state = state.student.replace(params=params, normalizer=norm)
        metrics = {**metrics, "distill_loss": losses[-1],
                   "nonfinite": metrics["nonfinite"] | ~jnp.all(jnp.isfinite(losses))}
        return DistilledState(t_state, s_state, opt_state), metrics

    def step(state: DistilledState, x: jax.Array, action: jax.Array, key: Any,
             members: jax.Array | None = None) -> ModelStep:
        return student.step(state.student, x, action, key, members)

    def elites(state: DistilledState) -> jax.Array:
        del state
        return jnp.zeros((1,), jnp.int32)

    return Distilled(teacher=teacher, student=student, state_size=teacher.state_size,
                     action_size=teacher.action_size, num_members=1, num_elites=1,
                     has_reward=teacher.has_reward, has_termination=teacher.has_termination,
                     init=init, fit=fit, step=step, elites=elites)


__all__ = ["DistillConfig", "Distilled", "DistilledState", "make_distilled", "teacher_moments"]
