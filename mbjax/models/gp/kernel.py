"""Squared-exponential ARD kernel, its masked log marginal likelihood and the hyperparameter fit.

One independent GP per output dimension (Deisenroth & Rasmussen 2011, PILCO): output `o` has
lengthscales ell_o [E], signal std sf_o and noise std sn_o, stored as logs so Adam works on an
unconstrained space. Data live in fixed-capacity arrays with a validity mask (the replay buffer's
traced size), so nothing retraces as data arrive: masked rows get a unit diagonal and a zero
target, which leaves the likelihood of the valid rows unchanged.

Written here rather than with gpjax/tinygp: neither does moment matching for uncertain inputs
(`moments.py`), and that needs direct access to the kernel's pieces.

Shapes: x [n, E] inputs, y [n, O] targets, mask [n] (1.0 valid), O outputs, E input dims.
Computations follow the dtype of the inputs: float64 under `jax.enable_x64(True)` (the tests,
PILCO's steps), float32 otherwise (the GP as a PETS model; `GPConfig.max_snr` bounds the
conditioning).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from mbjax import linalg


class Hyper(NamedTuple):
    """Log hyperparameters of O independent SE-ARD GPs: log_lengthscale [O, E],
    log_signal_std [O], log_noise_std [O]."""

    log_lengthscale: jax.Array
    log_signal_std: jax.Array
    log_noise_std: jax.Array


def se_ard(x1: jax.Array, x2: jax.Array, lengthscale: jax.Array, signal_var: jax.Array):
    """k(x1, x2) = sf^2 exp(-1/2 sum_e ((x1_e - x2_e) / ell_e)^2): x1 [n, E], x2 [m, E],
    lengthscale [E], signal_var [] -> [n, m]."""
    d = (x1[:, None, :] - x2[None, :, :]) / lengthscale
    return signal_var * jnp.exp(-0.5 * jnp.sum(d * d, axis=-1))


def masked_gram(x: jax.Array, mask: jax.Array, lengthscale, signal_var, noise_var) -> jax.Array:
    """K + sn^2 I on the valid rows; masked rows/columns are rows of the identity. [n, n]."""
    valid = mask[:, None] * mask[None, :]
    k = se_ard(x, x, lengthscale, signal_var) * valid
    return k + jnp.diag(jnp.where(mask > 0, noise_var, 1.0))


def neg_log_marginal(hyper_o: Hyper, x: jax.Array, y: jax.Array, mask: jax.Array,
                     jitter: float) -> jax.Array:
    """-log p(y | x) of ONE output (hyper_o: the leaves of one output, y [n]), valid rows only."""
    sf2 = jnp.exp(2.0 * hyper_o.log_signal_std)
    k = masked_gram(x, mask, jnp.exp(hyper_o.log_lengthscale), sf2,
                    jnp.exp(2.0 * hyper_o.log_noise_std) + jitter * sf2)
    factor = linalg.spd_factor(k)
    alpha = linalg.solve(factor, y * mask)
    n = jnp.sum(mask)
    return (0.5 * jnp.dot(y * mask, alpha) + 0.5 * linalg.logdet(factor)
            + 0.5 * n * math.log(2.0 * math.pi))


def hyper_penalty(hyper_o: Hyper, input_std: jax.Array, max_lengthscale: float,
                  max_snr: float, power: float = 30.0) -> jax.Array:
    """PILCO's `hypCurb`: a steep barrier keeping lengthscales within max_lengthscale x the
    input std and the signal-to-noise ratio below max_snr (conditioning of K)."""
    ls = (hyper_o.log_lengthscale - jnp.log(input_std)) / math.log(max_lengthscale)
    snr = (hyper_o.log_signal_std - hyper_o.log_noise_std) / math.log(max_snr)
    return jnp.sum(ls**power) + snr**power


def initial_hyper(x: jax.Array, y: jax.Array, mask: jax.Array) -> Hyper:
    """PILCO's initialisation: ell = input std, sf = target std, sn = sf / 10."""
    sx, sy = masked_std(x, mask), masked_std(y, mask)
    return Hyper(jnp.broadcast_to(jnp.log(sx), (y.shape[-1], x.shape[-1])), jnp.log(sy),
                 jnp.log(sy / 10.0))


def masked_std(x: jax.Array, mask: jax.Array) -> jax.Array:
    """Std over the valid rows of x [n, E] -> [E] (floored at 1e-3)."""
    n = jnp.maximum(jnp.sum(mask), 1.0)
    mean = jnp.sum(mask[:, None] * x, 0) / n
    return jnp.sqrt(jnp.sum(mask[:, None] * (x - mean) ** 2, 0) / n) + 1e-3


def fit_hyper(hyper: Hyper, x: jax.Array, y: jax.Array, mask: jax.Array, *, steps: int,
              learning_rate: float, jitter: float, max_lengthscale: float,
              max_snr: float) -> tuple[Hyper, jax.Array]:
    """Maximises the log marginal likelihood of every output (vmapped) by `steps` Adam steps on
    the log hyperparameters, starting from `hyper`. -> (hyper, its NLL per valid point and
    output, barrier included)."""
    input_std = masked_std(x, mask)
    n = jnp.maximum(jnp.sum(mask), 1.0)

    def loss_o(h, y_o):
        nll = neg_log_marginal(h, x, y_o, mask, jitter)
        return nll / n + hyper_penalty(h, input_std, max_lengthscale, max_snr)

    def loss(h):
        return jnp.sum(jax.vmap(loss_o, in_axes=(0, 1))(h, y))

    opt = optax.adam(learning_rate)

    def one(carry, _):
        h, opt_state = carry
        value, grad = jax.value_and_grad(loss)(h)
        grad = jax.tree.map(lambda g: jnp.where(jnp.isfinite(g), g, 0.0), grad)
        updates, opt_state = opt.update(grad, opt_state, h)
        return (optax.apply_updates(h, updates), opt_state), value

    (hyper, _), _ = jax.lax.scan(one, (hyper, opt.init(hyper)), None, length=steps)
    return hyper, loss(hyper) / y.shape[-1]
