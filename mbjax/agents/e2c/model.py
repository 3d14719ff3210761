"""The E2C model: a VAE whose latent moves by a locally linear transition (Watter et al. 2015,
"Embed to Control: A Locally Linear Latent Dynamics Model for Control from Raw Images", NIPS,
sections 2.2-3.3).

    encoder   q(z | x) = N(mu(x), diag sigma(x)^2)                          z [n_z]
    decoder   p(x | z): Gaussian of std `pixel_std` on pixels / 255 - 0.5: the
              reconstruction loss is sum (x - x_rec)^2 / (2 pixel_std^2) (constant dropped;
              a small std lets the few pixels of a thin pole outweigh the KL terms, which
              otherwise collapse the posterior to the mean image)
    transition, from the network h_trans(z_bar) of a latent z_bar:
              A = I + v r^T (rank one, eq. 7), B [n_z, n_u], o [n_z]
              z_hat' = A z + B u + o,  Q_hat(z' | z, u) = N(A mu + B u + o, A Sigma A^T)

Loss per triple (x_t, u_t, x_{t+1}), eq. 11-12 (z_t a reparameterised sample of q(z | x_t),
A, B, o computed from it, z_hat_{t+1} = A z_t + B u_t + o its image under the transition):

    rec(x_t | z_t) + rec(x_{t+1} | z_hat_{t+1}) + KL(q(z | x_t) || N(0, I))
    + lambda KL(Q_hat(z_{t+1} | mu_t, u_t) || q(z | x_{t+1}))

The KL between the full-covariance prediction and the diagonal encoding is closed form; its
log-determinant uses the matrix determinant lemma, det A = 1 + r^T v (the paper's remark that
the rank-one form keeps it cheap).

Layers are flax: the image encoder/decoder are the RSSM's (`mbjax.models.rssm.networks`
`ConvEncoder` / `ConvDecoder`, configured through an `RSSMConfig`), or for encoder="mlp" the
paper's pendulum networks (ReLU MLPs on the flattened image). What is E2C's (the rank-one
transition, its Gaussian algebra, the losses) is written here: no maintained library has it.

Shapes: obs uint8 [..., H, W, C]; z [..., n_z]; u [..., n_u].
"""

from __future__ import annotations

import math
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from mbjax.agents.e2c.config import Config
from mbjax.models.rssm import RSSMConfig
from mbjax.models.rssm.losses import reconstruction_loss
from mbjax.models.rssm.networks import ConvDecoder, ConvEncoder

MIN_STD = 1e-3


def conv_config(config: Config, channels: int) -> RSSMConfig:
    """The RSSM config whose conv encoder/decoder E2C uses (only the image fields matter)."""
    return RSSMConfig(encoder="conv", image_size=config.image_size, image_channels=channels,
                      depth=config.depth)


class Gaussian(NamedTuple):
    """A diagonal Gaussian: mean [..., n], std [..., n]."""

    mean: jax.Array
    std: jax.Array


class Transition(NamedTuple):
    """The locally linear transition at a latent: v, r [..., n_z]; B [..., n_z, n_u]; o [..., n_z].
    A = I + v r^T."""

    v: jax.Array
    r: jax.Array
    B: jax.Array
    o: jax.Array

    def A(self) -> jax.Array:
        """A = I + v r^T: [..., n_z, n_z]."""
        n = self.v.shape[-1]
        return jnp.eye(n, dtype=self.v.dtype) + self.v[..., :, None] * self.r[..., None, :]

    def apply(self, z: jax.Array, u: jax.Array) -> jax.Array:
        """A z + B u + o with A z = z + v (r . z) (never forming A): [..., n_z]."""
        rz = jnp.sum(self.r * z, axis=-1, keepdims=True)
        return z + self.v * rz + jnp.einsum("...ij,...j->...i", self.B, u) + self.o


class MLPEncoder(nn.Module):
    """uint8 images [..., H, W, C] -> features [..., hidden] (ReLU layers on pixels/255 - 0.5)."""

    hidden: int
    layers: int

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        x = obs.astype(jnp.float32) / 255.0 - 0.5
        x = x.reshape(obs.shape[:-3] + (-1,))
        for _ in range(self.layers):
            x = nn.relu(nn.Dense(self.hidden)(x))
        return x


class MLPDecoder(nn.Module):
    """z [..., n_z] -> images [..., *image_shape] predicting pixels/255 - 0.5."""

    hidden: int
    layers: int
    image_shape: tuple[int, int, int]

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        x = z
        for _ in range(self.layers):
            x = nn.relu(nn.Dense(self.hidden)(x))
        x = nn.Dense(math.prod(self.image_shape))(x)
        return x.reshape(z.shape[:-1] + self.image_shape)


class E2CNet(nn.Module):
    """encode(obs) -> Gaussian; decode(z) -> image; transition(z, n_u) -> Transition."""

    config: Config
    image_shape: tuple[int, int, int]
    action_size: int

    def setup(self):
        c = self.config
        if c.encoder == "conv":
            rssm = conv_config(c, self.image_shape[-1])
            self.encoder, self.decoder = ConvEncoder(rssm), ConvDecoder(rssm)
        else:
            self.encoder = MLPEncoder(c.hidden_size, c.hidden_layers)
            self.decoder = MLPDecoder(c.hidden_size, c.hidden_layers, self.image_shape)
        self.posterior = nn.Dense(2 * c.latent_size)
        self.trans_layers = [nn.Dense(h) for h in c.transition_hidden]
        n, a = c.latent_size, self.action_size
        # Small output weights: A starts near I and B, o near 0 (a smooth, stable start).
        self.trans_out = nn.Dense(2 * n + n * a + n,
                                  kernel_init=nn.initializers.variance_scaling(
                                      0.01, "fan_in", "truncated_normal"))

    def encode(self, obs: jax.Array) -> Gaussian:
        stats = self.posterior(self.encoder(obs))
        mean, raw = jnp.split(stats, 2, axis=-1)
        return Gaussian(mean, jax.nn.softplus(raw) + MIN_STD)

    def decode(self, z: jax.Array) -> jax.Array:
        return self.decoder(z)

    def transition(self, z: jax.Array) -> Transition:
        n, a = self.config.latent_size, self.action_size
        h = z
        for layer in self.trans_layers:
            h = nn.relu(layer(h))
        out = self.trans_out(h)
        v, r, b, o = jnp.split(out, [n, 2 * n, 2 * n + n * a], axis=-1)
        return Transition(v, r, b.reshape(z.shape[:-1] + (n, a)), o)

    def __call__(self, obs: jax.Array) -> tuple:
        """Touches every network once (for `init`): obs [B, H, W, C]."""
        q = self.encode(obs)
        return q, self.decode(q.mean), self.transition(q.mean)


# ----------------------------------------------------------------------------- Gaussian algebra


def kl_to_standard_normal(q: Gaussian) -> jax.Array:
    """KL(N(mean, diag std^2) || N(0, I)) summed over the last axis: [...]."""
    var = q.std**2
    return 0.5 * jnp.sum(var + q.mean**2 - 1.0 - jnp.log(var), axis=-1)


def predicted_distribution(trans: Transition, q: Gaussian, u: jax.Array
                           ) -> tuple[jax.Array, jax.Array]:
    """Q_hat = N(A mu + B u + o, A diag(std^2) A^T): (mean [..., n], cov [..., n, n])."""
    A = trans.A()
    cov = jnp.einsum("...ij,...j,...kj->...ik", A, q.std**2, A)
    return trans.apply(q.mean, u), cov


def kl_prediction_to_encoding(trans: Transition, q: Gaussian, u: jax.Array,
                              target: Gaussian) -> jax.Array:
    """KL(Q_hat(. | q, u) || target) for Q_hat = N(m, A S A^T), target = N(mu, diag s^2): [...].

    0.5 [tr(D^-1 C) + (mu - m)' D^-1 (mu - m) - n + log det D - log det C], with
    log det C = 2 log |1 + r.v| + sum log std^2 (det A by the matrix determinant lemma).
    """
    mean, cov = predicted_distribution(trans, q, u)
    tvar = target.std**2
    n = mean.shape[-1]
    trace = jnp.sum(jnp.diagonal(cov, axis1=-2, axis2=-1) / tvar, axis=-1)
    maha = jnp.sum((target.mean - mean) ** 2 / tvar, axis=-1)
    det_a = 1.0 + jnp.sum(trans.r * trans.v, axis=-1)
    logdet_c = 2.0 * jnp.log(jnp.abs(det_a) + 1e-12) + jnp.sum(jnp.log(q.std**2), axis=-1)
    return 0.5 * (trace + maha - n + jnp.sum(jnp.log(tvar), axis=-1) - logdet_c)


# ----------------------------------------------------------------------------- losses


class LossTerms(NamedTuple):
    """Batch means of the E2C loss terms (floats [])."""

    loss: jax.Array
    rec: jax.Array  # reconstruction of x_t from z_t
    next_rec: jax.Array  # reconstruction of x_{t+1} from z_hat_{t+1}
    kl_prior: jax.Array  # KL(q(z | x_t) || N(0, I))
    kl_transition: jax.Array  # KL(Q_hat || q(z | x_{t+1}))


def e2c_loss(net: E2CNet, params, obs: jax.Array, action: jax.Array, next_obs: jax.Array,
             kl_weight: jax.Array, key: jax.Array) -> tuple[jax.Array, LossTerms]:
    """The E2C loss (module docstring) of a batch: obs, next_obs uint8 [B, H, W, C], action
    [B, n_u], kl_weight = lambda []. Returns (loss [], LossTerms)."""
    q = net.apply(params, obs, method=E2CNet.encode)
    q_next = net.apply(params, next_obs, method=E2CNet.encode)
    z = q.mean + q.std * jax.random.normal(key, q.mean.shape, q.mean.dtype)
    trans = net.apply(params, z, method=E2CNet.transition)
    z_next = trans.apply(z, action)
    recon = net.apply(params, jnp.concatenate([z, z_next]), method=E2CNet.decode)
    rec_all = reconstruction_loss(conv_config(net.config, obs.shape[-1]), recon,
                                  jnp.concatenate([obs, next_obs]))
    rec_all = rec_all / (2.0 * net.config.pixel_std**2)
    rec, next_rec = jnp.split(rec_all, 2)
    kl_prior = kl_to_standard_normal(q)
    kl_trans = kl_prediction_to_encoding(trans, q, action, q_next)
    terms = LossTerms(
        loss=jnp.mean(rec + next_rec + kl_prior + kl_weight * kl_trans),
        rec=jnp.mean(rec), next_rec=jnp.mean(next_rec), kl_prior=jnp.mean(kl_prior),
        kl_transition=jnp.mean(kl_trans))
    return terms.loss, terms


def mean_step(net: E2CNet, params, z: jax.Array, u: jax.Array) -> jax.Array:
    """The deterministic latent dynamics iLQR plans with: A(z) z + B(z) u + o(z): [..., n_z]."""
    return net.apply(params, z, method=E2CNet.transition).apply(z, u)


def prediction_error(net: E2CNet, params, obs: jax.Array, action: jax.Array,
                     next_obs: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The latent linear prediction error of a batch, scale-free (the latent's scale is learnt):

    relative = E|f(mu_t, u_t) - mu_{t+1}|^2 / E|mu_{t+1} - mean(mu_{t+1})|^2
    vs_persistence = E|f(mu_t, u_t) - mu_{t+1}|^2 / E|mu_t - mu_{t+1}|^2
    (f = `mean_step`; below 1 the model beats predicting "no change"). Returns both []."""
    mu = net.apply(params, obs, method=E2CNet.encode).mean
    mu_next = net.apply(params, next_obs, method=E2CNet.encode).mean
    err = jnp.mean(jnp.sum((mean_step(net, params, mu, action) - mu_next) ** 2, -1))
    spread = jnp.mean(jnp.sum((mu_next - jnp.mean(mu_next, 0)) ** 2, -1))
    still = jnp.mean(jnp.sum((mu - mu_next) ** 2, -1))
    return err / jnp.maximum(spread, 1e-12), err / jnp.maximum(still, 1e-12)
