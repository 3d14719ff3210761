"""A mean-field variational Bayesian MLP dynamics model (Bayes by backprop) behind the model
protocol (`mbjax.models.base`): `make_bnn(BNNConfig, obs_size, action_size)`.

The network maps normalized [obs, action] to a Gaussian over the normalized target
[next_obs - obs (, reward)] (mean and a bounded log-variance: the aleatoric part). Its weights
are a factorized Gaussian posterior q(w) trained by maximizing the ELBO,

    loss = E_q[-log N(y | f_w(x))] + beta(t) * KL(q || N(0, prior_std^2)) / N_train,

with local reparameterization (`layers.train_forward`) and a KL warm-up beta(t) = kl_weight *
min(1, t / kl_warmup_steps) over the model's gradient steps t. For planning, `num_members` weight
samples drawn after every fit (fixed until the next, so a particle keeps its function over a
horizon) are the protocol's members: PETS's TS-inf and MBPO's rollouts treat posterior samples
exactly as ensemble members, and their spread is the epistemic uncertainty.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from mbjax import optim, replay
from mbjax.models.bnn import layers as bl
from mbjax.models.bnn.config import BNNConfig
from mbjax.models.mlp import get_activation
from mbjax.models.normalizer import denormalize, fit_normalizer, normalize
from mbjax.models.state import ModelNormalizer, ModelStep
from mbjax.models.training import all_finite, finite_rows

_LOG_2PI = math.log(2.0 * math.pi)
# Rows of each split scored for the fit's metrics (a fixed count keeps shapes static).
_EVAL_ROWS = 1024


class BNNState(NamedTuple):
    """params: {"layers": [...]} (variational means and rhos, `layers.init_layers`);
    normalizer: inputs / targets; opt_state: Adam's (learning rate a leaf); noise: the members'
    weight noise (leaves [M, ...]); steps: [] int32 gradient steps taken (the KL warm-up)."""

    params: Any
    normalizer: ModelNormalizer
    opt_state: Any
    noise: Any
    steps: jax.Array


class FitRows(NamedTuple):
    """The buffer as regression rows: x [C, in], y [C, D] (raw), train / hold masks [C]."""

    x: jax.Array
    y: jax.Array
    train: jax.Array
    hold: jax.Array


class BNN(NamedTuple):
    """The protocol attributes (`mbjax.models.base`) of a BNN; functions are pure."""

    config: BNNConfig
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


def bounded_logvar(config: BNNConfig, raw: jax.Array) -> jax.Array:
    """Soft bounds [min_logvar, max_logvar] on the log-variance head (PETS's rule)."""
    hi, lo = config.max_logvar, config.min_logvar
    logvar = hi - jax.nn.softplus(hi - raw)
    return lo + jax.nn.softplus(logvar - lo)


def _rows(buffer: replay.ReplayBuffer, predict_reward: bool, holdout_ratio: float,
          key: jax.Array) -> FitRows:
    d = buffer.data
    cap = d.obs.shape[0]
    used = [d.obs, d.action, d.next_obs] + ([d.reward] if predict_reward else [])
    valid = (replay.valid_mask(buffer) > 0) & finite_rows(*used)
    zero = lambda a: jnp.where(valid.reshape((cap,) + (1,) * (a.ndim - 1)), a, 0.0)
    x = jnp.concatenate([zero(d.obs), zero(d.action)], axis=-1).astype(jnp.float32)
    y = zero(d.next_obs - d.obs).astype(jnp.float32)
    if predict_reward:
        y = jnp.concatenate([y, zero(d.reward).reshape(cap, 1).astype(jnp.float32)], axis=-1)
    hold = valid & (jax.random.uniform(key, (cap,)) < holdout_ratio)
    # With too few rows for a holdout every valid row trains.
    hold = hold & (jnp.sum(valid) >= 20)
    return FitRows(x, y, valid & ~hold, hold)


def _gaussian_nll(out: jax.Array, y: jax.Array, config: BNNConfig) -> jax.Array:
    """Mean over rows of -log N(y | mean, exp(logvar)), summed over target dims."""
    mean, raw = jnp.split(out, 2, axis=-1)
    logvar = bounded_logvar(config, raw)
    nll = 0.5 * ((y - mean) ** 2 * jnp.exp(-logvar) + logvar + _LOG_2PI)
    return jnp.mean(jnp.sum(nll, axis=-1))


def _pick(mask: jax.Array, key: jax.Array, n: int) -> jax.Array:
    """n indices drawn uniformly (with replacement) among the True slots of mask [C]."""
    order = jnp.argsort(~mask)  # True slots first
    count = jnp.maximum(jnp.sum(mask), 1)
    return order[jax.random.randint(key, (n,), 0, count)]


def make_bnn(config: BNNConfig, obs_size: int, action_size: int) -> BNN:
    """A BNN dynamics model for flat observations [obs_size] and actions [action_size]."""
    if not isinstance(config, BNNConfig):
        raise ValueError(f"make_bnn: config must be a BNNConfig, got {type(config).__name__}")
    target = obs_size + int(config.predict_reward)
    sizes = (obs_size + action_size, *config.hidden_sizes, 2 * target)
    act = get_activation(config.activation)
    optimizer = optax.inject_hyperparams(optax.adam)(learning_rate=config.learning_rate)
    m = config.num_members

    def init(key: jax.Array) -> BNNState:
        k_layers, k_noise = jax.random.split(key)
        params = {"layers": bl.init_layers(k_layers, sizes, config.init_std)}
        ident = lambda n: fit_normalizer(jnp.zeros((1, n)), jnp.zeros((1,)))
        return BNNState(params=params,
                        normalizer=ModelNormalizer(ident(sizes[0]), ident(target)),
                        opt_state=optimizer.init(params),
                        noise=bl.weight_noise(k_noise, params["layers"], m),
                        steps=jnp.zeros((), jnp.int32))

    def loss_fn(params, x, y, n_train, beta, key):
        nll = _gaussian_nll(bl.train_forward(params["layers"], x, key, act), y, config)
        kl = bl.kl_to_prior(params["layers"], config.prior_std)
        return nll + beta * kl / n_train, nll

    def mean_mse(params, norm: ModelNormalizer, rows: FitRows, mask, key) -> jax.Array:
        """MSE of the posterior-mean network on up to _EVAL_ROWS rows of `mask` (normalized)."""
        idx = _pick(mask, key, _EVAL_ROWS)
        mean_layers = [{"w": lay["w_mu"][None], "b": lay["b_mu"][None]}
                       for lay in params["layers"]]
        out = bl.member_forward(mean_layers, normalize(norm.inputs, rows.x[idx])[None], act)[0]
        err = (out[:, :target] - normalize(norm.targets, rows.y[idx])) ** 2
        return jnp.where(jnp.any(mask), jnp.mean(err), jnp.nan)

    def fit(state: BNNState, buffer: replay.ReplayBuffer, key: jax.Array):
        k_split, k_steps, k_noise, k_eval = jax.random.split(key, 4)
        rows = _rows(buffer, config.predict_reward, config.holdout_ratio, k_split)
        norm = ModelNormalizer(fit_normalizer(rows.x, rows.train),
                               fit_normalizer(rows.y, rows.train))
        xn, yn = normalize(norm.inputs, rows.x), normalize(norm.targets, rows.y)
        n_train = jnp.maximum(jnp.sum(rows.train), 1).astype(jnp.float32)

        def grad_step(carry, k):
            params, opt_state, steps = carry
            k_idx, k_fwd = jax.random.split(k)
            idx = _pick(rows.train, k_idx, config.batch_size)
            beta = config.kl_weight * jnp.minimum(1.0, (steps + 1) / config.kl_warmup_steps)
            (loss, nll), grads = jax.value_and_grad(loss_fn, has_aux=True)(
                params, xn[idx], yn[idx], n_train, beta, k_fwd)
            updates, opt_state = optimizer.update(grads, opt_state)
            return (optax.apply_updates(params, updates), opt_state, steps + 1), loss

        (params, opt_state, steps), losses = jax.lax.scan(
            grad_step, (state.params, state.opt_state, state.steps),
            jax.random.split(k_steps, config.fit_steps))
        k_tr, k_ho = jax.random.split(k_eval)
        metrics = {"train_loss": mean_mse(params, norm, rows, rows.train, k_tr),
                   "holdout_loss": mean_mse(params, norm, rows, rows.hold, k_ho),
                   "elbo_loss": losses[-1]}
        metrics["nonfinite"] = ~all_finite(losses) | ~all_finite(params)
        new = BNNState(params, norm, opt_state, bl.weight_noise(k_noise, params["layers"], m),
                       steps)
        # A fit that met NaN/Inf keeps the previous model.
        new = jax.tree_util.tree_map(lambda a, b: jnp.where(metrics["nonfinite"], b, a),
                                     new, state)
        return new, metrics

    def step(state: BNNState, x: jax.Array, action: jax.Array, key: Any,
             members: jax.Array | None = None) -> ModelStep:
        noise = state.noise if members is None else jax.tree_util.tree_map(
            lambda n: n[members], state.noise)
        weights = bl.sample_weights(state.params["layers"], noise)
        inputs = normalize(state.normalizer.inputs, jnp.concatenate([x, action], axis=-1))
        mean, raw = jnp.split(bl.member_forward(weights, inputs, act), 2, axis=-1)
        std = jnp.exp(0.5 * bounded_logvar(config, raw))
        if key is not None:
            mean = mean + std * jax.random.normal(key, mean.shape, mean.dtype)
        out = denormalize(state.normalizer.targets, mean)
        reward = out[..., obs_size] if config.predict_reward else None
        return ModelStep(next_obs=x + out[..., :obs_size], reward=reward, termination_prob=None)

    def elites(state: BNNState) -> jax.Array:
        del state
        return jnp.arange(m, dtype=jnp.int32)

    return BNN(config=config, state_size=obs_size, action_size=action_size, num_members=m,
               num_elites=m, has_reward=config.predict_reward, has_termination=False,
               init=init, fit=fit, step=step, elites=elites)


def set_learning_rate(state: BNNState, learning_rate: Any) -> BNNState:
    """`state` with Adam's learning rate replaced (a leaf: no retrace)."""
    return state._replace(opt_state=optim.set_hyperparams(state.opt_state,
                                                          learning_rate=learning_rate))
