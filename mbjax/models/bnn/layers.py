"""Mean-field Gaussian weights (Bayes by backprop, Blundell et al. 2015) with the local
reparameterization trick (Kingma, Salimans and Welling 2015), as pure functions of a params
pytree.

Every weight w ~ N(mu, sigma^2) independently, sigma = softplus(rho). A layer's params are
{"w_mu": [in, out], "w_rho": [in, out], "b_mu": [out], "b_rho": [out]}. Written here rather
than taken from a library: flax has no variational layers, and the two forward passes below
(local reparameterization for training, fixed weight samples as ensemble members for planning)
are what the model protocol needs.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp

Params = Any


def softplus_inverse(x: float) -> float:
    """rho with softplus(rho) = x (x > 0)."""
    return x + math.log(-math.expm1(-x))


def init_layers(key: jax.Array, sizes: Sequence[int], init_std: float) -> list[dict]:
    """Layers for sizes [in, h1, ..., out]: means He-initialized (truncated-free normal with
    std sqrt(2 / in)), biases 0, every posterior std `init_std`."""
    layers = []
    rho = softplus_inverse(init_std)
    for k, (n_in, n_out) in zip(jax.random.split(key, len(sizes) - 1),
                                zip(sizes[:-1], sizes[1:], strict=True), strict=True):
        layers.append({
            "w_mu": jax.random.normal(k, (n_in, n_out)) * math.sqrt(2.0 / n_in),
            "w_rho": jnp.full((n_in, n_out), rho), "b_mu": jnp.zeros((n_out,)),
            "b_rho": jnp.full((n_out,), rho),
        })
    return layers


def local_reparam_dense(layer: dict, x: jax.Array, eps: jax.Array) -> jax.Array:
    """One layer's pre-activations for independent weight draws per row: x [B, in] ->
    [B, out]. The pre-activation of a row is Gaussian with mean x mu_w + mu_b and variance
    x^2 sigma_w^2 + sigma_b^2; sampling it (eps [B, out] standard normal) is the local
    reparameterization trick: lower-variance gradients than sampling the weights."""
    mean = x @ layer["w_mu"] + layer["b_mu"]
    var = (x * x) @ jax.nn.softplus(layer["w_rho"]) ** 2 + jax.nn.softplus(layer["b_rho"]) ** 2
    return mean + jnp.sqrt(var) * eps


def sample_weights(layers: list[dict], noise: list[dict]) -> list[dict]:
    """Weight samples mu + sigma * eps for every member: noise leaves [M, ...] of the shapes of
    w_mu / b_mu -> [{"w": [M, in, out], "b": [M, out]}]."""
    return [{"w": lay["w_mu"] + jax.nn.softplus(lay["w_rho"]) * n["w"],
             "b": lay["b_mu"] + jax.nn.softplus(lay["b_rho"]) * n["b"]}
            for lay, n in zip(layers, noise, strict=True)]


def weight_noise(key: jax.Array, layers: list[dict], members: int) -> list[dict]:
    """Standard normals for `members` weight samples: [{"w": [M, in, out], "b": [M, out]}]."""
    keys = jax.random.split(key, 2 * len(layers))
    return [{"w": jax.random.normal(keys[2 * i], (members,) + lay["w_mu"].shape),
             "b": jax.random.normal(keys[2 * i + 1], (members,) + lay["b_mu"].shape)}
            for i, lay in enumerate(layers)]


def member_forward(weights: list[dict], x: jax.Array,
                   activation: Callable[[jax.Array], jax.Array]) -> jax.Array:
    """x [M', R, in] through member m's sampled weights (leaves [M', ...]) -> [M', R, out]."""
    for i, lay in enumerate(weights):
        x = jnp.einsum("mri,mio->mro", x, lay["w"]) + lay["b"][:, None]
        if i < len(weights) - 1:
            x = activation(x)
    return x


def train_forward(layers: list[dict], x: jax.Array, key: jax.Array,
                  activation: Callable[[jax.Array], jax.Array]) -> jax.Array:
    """x [B, in] through the network with local reparameterization at every layer -> [B, out]."""
    keys = jax.random.split(key, len(layers))
    for i, (lay, k) in enumerate(zip(layers, keys, strict=True)):
        x = local_reparam_dense(lay, x, jax.random.normal(k, x.shape[:1] + lay["b_mu"].shape))
        if i < len(layers) - 1:
            x = activation(x)
    return x


def kl_to_prior(layers: list[dict], prior_std: float) -> jax.Array:
    """KL(q || p) summed over every weight and bias, q = N(mu, sigma^2), p = N(0, prior_std^2):
    log(p / sigma) + (sigma^2 + mu^2) / (2 p^2) - 1/2 per weight."""
    total = jnp.zeros(())
    for lay in layers:
        for mu, rho in ((lay["w_mu"], lay["w_rho"]), (lay["b_mu"], lay["b_rho"])):
            sigma = jax.nn.softplus(rho)
            total += jnp.sum(jnp.log(prior_std / sigma)
                             + (sigma**2 + mu**2) / (2 * prior_std**2) - 0.5)
    return total
