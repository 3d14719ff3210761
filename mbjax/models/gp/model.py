"""The GP dynamics model: one SE-ARD GP per state dimension predicting the state delta from
(state, action), as a dynamics-model protocol implementation (`mbjax.models.base`).

`fit_gp` is the data-level fit that PILCO also uses on its own features:

1. hyperparameters: Adam on the log marginal likelihood (with PILCO's hypCurb barrier) of a
   uniform random subset of at most `max_points` valid rows (subset of data: it keeps the data's
   density, so the noise estimate is that of the data), warm-started from the previous fit;
2. posterior: exact on all rows when the data capacity is <= `max_points`, otherwise FITC
   (the PILCO toolbox switches to FITC above ~300 points) with `max_points` inducing inputs
   picked by greedy conditional variance under the fitted kernel (`inducing.py`; or the random
   subset itself). On PILCO's cart-pole data (670 rows, 150 inducing inputs) the greedy support
   gave a FITC training MSE of 0.027 against 0.114 for the random subset, and 0.0013 against
   0.147 with 250.

The support of the posterior always has `max_points` rows (masked where unused), so the state's
shapes are fixed at `init` and the model passes through jit/vmap/scan like any other.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from mbjax import validation
from mbjax.models.gp.inducing import greedy_variance_subset
from mbjax.models.gp.kernel import Hyper, fit_hyper, initial_hyper
from mbjax.models.gp.moments import Moments, moment_match
from mbjax.models.gp.posterior import Posterior, exact_posterior, fitc_posterior, predict
from mbjax.models.state import ModelStep
from mbjax.models.training import finite_rows

INDUCING = ("greedy_variance", "random")


@dataclasses.dataclass(frozen=True)
class GPConfig:
    """max_points: support size (exact GP up to this many data rows; above it FITC with this many
    inducing inputs, and the hyperparameters fit on a subset of this size).
    fit_steps / learning_rate: Adam steps on the log hyperparameters per fit.
    jitter: added to the kernel diagonal, relative to sf^2. max_lengthscale (x input std) and
    max_snr (sf / sn): PILCO's hypCurb barrier (toolbox: 100 and 500); a lower max_snr keeps
    float32 Cholesky factors well conditioned. warm_start: start each fit from the last one's
    hyperparameters (the first fit starts from PILCO's data-based guess).
    inducing: the FITC support once the data exceed max_points: "greedy_variance" (pivoted
    Cholesky under the fitted kernel, `mbjax.models.gp.inducing`) or "random" (the random
    subset the hyperparameters were fitted on)."""

    max_points: int = 300
    fit_steps: int = 200
    learning_rate: float = 0.05
    jitter: float = 1e-4
    max_lengthscale: float = 100.0
    max_snr: float = 500.0
    warm_start: bool = True
    inducing: str = "greedy_variance"

    def __post_init__(self) -> None:
        validation.field_int(self, "max_points", lo=2)
        validation.field_int(self, "fit_steps", lo=0)
        validation.field_float(self, "learning_rate", 0.0, lo_open=True)
        validation.field_float(self, "jitter", 0.0)
        validation.field_float(self, "max_lengthscale", 1.0, lo_open=True)
        validation.field_float(self, "max_snr", 1.0, lo_open=True)
        validation.field_bool(self, "warm_start")
        validation.field_choice(self, "inducing", INDUCING)


class GPState(NamedTuple):
    """posterior (support [max_points, E], beta [O, max_points], inv_gram [O, M, M], hyper);
    fitted: bool [] (False before the first fit: the model predicts a zero delta)."""

    posterior: Posterior
    fitted: jax.Array


def empty_state(num_inputs: int, num_outputs: int, max_points: int,
                dtype: Any = jnp.float32) -> GPState:
    """A zero-delta model: no support weight, unit hyperparameters."""
    zeros = lambda *shape: jnp.zeros(shape, dtype)
    hyper = Hyper(zeros(num_outputs, num_inputs), zeros(num_outputs), zeros(num_outputs) - 2.0)
    post = Posterior(zeros(max_points, num_inputs), zeros(num_outputs, max_points),
                     zeros(num_outputs, max_points, max_points), hyper)
    return GPState(post, jnp.zeros((), bool))


def subset_indices(mask: jax.Array, size: int, key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """A uniform random subset of at most `size` valid rows: (indices [size], used [size])."""
    u = jnp.where(mask > 0, jax.random.uniform(key, mask.shape), 2.0)
    idx = jnp.argsort(u)[:size]
    return idx, (jnp.arange(size) < jnp.sum(mask > 0)).astype(mask.dtype)


def fit_gp(config: GPConfig, state: GPState, x: jax.Array, y: jax.Array, mask: jax.Array,
           key: jax.Array) -> tuple[GPState, dict]:
    """Fits the GPs to x [C, E] -> y [C, O] on the rows with mask [C] = 1 (see the module
    docstring). -> (state, {"nll": per-point NLL of the subset, "train_mse": mean over outputs})."""
    mask = mask * finite_rows(x, y).astype(mask.dtype)
    x, y = jnp.where(mask[:, None] > 0, x, 0.0), jnp.where(mask[:, None] > 0, y, 0.0)
    m = config.max_points
    if x.shape[0] <= m:  # exact GP, support padded to max_points with masked rows
        pad = m - x.shape[0]
        xs, ys = jnp.pad(x, ((0, pad), (0, 0))), jnp.pad(y, ((0, pad), (0, 0)))
        sub_mask = jnp.pad(mask, (0, pad))
    else:
        idx, sub_mask = subset_indices(mask, m, key)
        xs, ys = x[idx], y[idx]
    start = initial_hyper(xs, ys, sub_mask)
    if config.warm_start:
        start = jax.tree.map(lambda old, new: jnp.where(state.fitted, old, new),
                             state.posterior.hyper, start)
    hyper, nll = fit_hyper(start, xs, ys, sub_mask, steps=config.fit_steps,
                           learning_rate=config.learning_rate, jitter=config.jitter,
                           max_lengthscale=config.max_lengthscale, max_snr=config.max_snr)
    if x.shape[0] <= m:
        post = exact_posterior(hyper, xs, ys, sub_mask, config.jitter)
    else:  # FITC on max_points inducing inputs
        z_idx, z_mask = ((idx, sub_mask) if config.inducing == "random"
                         else greedy_variance_subset(x, mask, hyper, m))
        post = fitc_posterior(hyper, x, y, mask, x[z_idx], z_mask, config.jitter)
    mean, _ = predict(post, x)
    n = jnp.maximum(jnp.sum(mask), 1.0)
    mse = jnp.sum(mask[:, None] * (mean - y) ** 2) / (n * y.shape[-1])
    any_data = jnp.sum(mask) > 0
    new = GPState(post, jnp.asarray(True))
    new = jax.tree.map(lambda a, b: jnp.where(any_data, a, b), new, state)
    return new, {"nll": nll, "train_mse": mse}


def sample_or_mean(post: Posterior, inputs: jax.Array, key: jax.Array | None) -> jax.Array:
    """inputs [R, E] -> the predicted delta [R, O]: the mean, or (key) one sample of the noisy
    observation from each row's marginal predictive N(mean, var + sn^2)."""
    mean, var = predict(post, inputs)
    if key is None:
        return mean
    std = jnp.sqrt(var + jnp.exp(2.0 * post.hyper.log_noise_std))
    return mean + std * jax.random.normal(key, mean.shape, mean.dtype)


@dataclasses.dataclass(frozen=True)
class GPModel:
    """The dynamics-model protocol for a GP on (obs, action) -> next_obs - obs. One member.

    predict_moments(state, mean [S + A], cov [S + A, S + A]) -> Moments of the delta (latent;
    the optional moment-matching method of the protocol, used by PILCO-style propagation)."""

    state_size: int
    action_size: int
    config: GPConfig = GPConfig()
    num_members: int = 1
    num_elites: int = 1
    has_reward: bool = False
    has_termination: bool = False

    def init(self, key: jax.Array) -> GPState:
        del key
        return empty_state(self.state_size + self.action_size, self.state_size,
                           self.config.max_points)

    def fit(self, state: GPState, data: Any, key: jax.Array) -> tuple[GPState, dict]:
        """data: a ReplayBuffer of Transitions (valid rows: index < size)."""
        t = data.data
        mask = (jnp.arange(t.obs.shape[0]) < data.size).astype(jnp.float32)
        x = jnp.concatenate([t.obs, t.action], axis=-1)
        new, info = fit_gp(self.config, state, x, t.next_obs - t.obs, mask, key)
        loss = info["train_mse"]
        nonfinite = ~jnp.all(jnp.isfinite(new.posterior.beta))
        return new, {"train_loss": loss, "holdout_loss": loss, "nonfinite": nonfinite,
                     "nll": info["nll"]}

    def step(self, state: GPState, x: jax.Array, action: jax.Array, key: jax.Array | None = None,
             members: jax.Array | None = None) -> ModelStep:
        """x [M', R, S], action [M', R, A] -> ModelStep(next_obs [M', R, S]); every member
        index is the one GP."""
        del members
        inputs = jnp.concatenate([x, action], axis=-1)
        flat = inputs.reshape(-1, inputs.shape[-1])
        delta = sample_or_mean(state.posterior, flat, key).reshape(x.shape)
        delta = jnp.where(state.fitted, delta, 0.0)
        return ModelStep(next_obs=x + delta, reward=None, termination_prob=None)

    def elites(self, state: GPState) -> jax.Array:
        del state
        return jnp.zeros((1,), jnp.int32)

    def predict_moments(self, state: GPState, mean: jax.Array, cov: jax.Array) -> Moments:
        return moment_match(state.posterior, mean, cov)


def make_gp(state_size: int, action_size: int, config: GPConfig | None = None) -> GPModel:
    """A GP dynamics model for states [S] and actions [A]."""
    validation.check_int("make_gp: state_size", state_size)
    validation.check_int("make_gp: action_size", action_size)
    return GPModel(state_size, action_size, config or GPConfig())
