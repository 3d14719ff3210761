"""The RSSM's networks as one flax.linen module, executed functionally (`apply` with params).

flax provides the layers we would otherwise write by hand and get subtly wrong: `nn.GRUCell`
(the deterministic recurrent core), `nn.Conv` / `nn.ConvTranspose` (image encoder/decoder),
`nn.LayerNorm` and `nn.Dense`. What is specific to the RSSM (the prior/posterior split, latent
distributions, unimix, KL balancing, twohot heads) is in this package because no maintained JAX
library offers it. Every layer block is Dense/Conv -> LayerNorm -> SiLU, as in DreamerV3.

Methods (shapes with any leading batch dims [...]):
    core(deter [..., D], stoch [..., Z], action [..., A]) -> deter' [..., D]
    prior(deter [..., D]) -> raw stats [..., R]
    posterior(deter [..., D], embed [..., E]) -> raw stats [..., R]
    encode(obs [..., *obs_shape]) -> embed [..., E]
    decode(feat [..., F]) -> reconstruction [..., *obs_shape] (symlog(obs) for vectors,
        obs / 255 - 0.5 for images)
    reward(feat [..., F]) -> twohot logits [..., bins]
    cont(feat [..., F]) -> continue logit [...]
where Z = stoch * max(classes, 1), F = D + Z and R the raw stats size (`latent.stats_size`).
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from mbjax import linalg
from mbjax.models.rssm.config import RSSMConfig
from mbjax.models.rssm.transforms import symlog


class MLP(nn.Module):
    """`layers` x (Dense without bias -> LayerNorm -> SiLU): [..., in] -> [..., hidden]."""

    hidden: int
    layers: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for _ in range(self.layers):
            x = nn.silu(nn.LayerNorm()(nn.Dense(self.hidden, use_bias=False)(x)))
        return x


def orthogonal_one_key_at_a_time() -> nn.initializers.Initializer:
    """flax's orthogonal initializer (GRUCell's recurrent kernels), made safe under `vmap`.

    Vmapped over seeds, the orthogonal init is a batched LAPACK QR, which jaxlib's CPU kernel
    splits over XLA's intra-op thread pool and then waits on. When the GRU's three recurrent
    kernels are initialised concurrently (XLA:CPU runs independent ops in parallel), each QR
    holds a pool thread while waiting for work queued behind the others: on a 2-thread pool
    (a 2-core machine) a 3-seed Dreamer init on dmc/CartpoleSwingup deadlocked with every
    thread in a futex wait (the stacks end in jax::ParallelBatchMap inside lapack_sgeqrf_ffi).
    Under `vmap` this initializer maps over the keys one at a time (`linalg.one_at_a_time`),
    so each QR is unbatched; the values are those of `nn.initializers.orthogonal()` per key.
    """
    base = nn.initializers.orthogonal()

    def init(key: jax.Array, shape, dtype=jnp.float32) -> jax.Array:
        return linalg.one_at_a_time(lambda k: base(k, shape, dtype))(key)

    return init


def _flat_images(x: jax.Array, image_dims: int = 3) -> tuple[jax.Array, tuple[int, ...]]:
    """[..., H, W, C] -> ([N, H, W, C], leading dims): convs take one batch axis."""
    lead = x.shape[:-image_dims]
    return x.reshape((math.prod(lead),) + x.shape[-image_dims:]), lead


class ConvEncoder(nn.Module):
    """uint8 images [..., H, W, C] -> [..., 4 * 4 * depth * 2**(stages-1)] (pixels/255 - 0.5)."""

    config: RSSMConfig

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        x, lead = _flat_images(obs.astype(jnp.float32) / 255.0 - 0.5)
        for i in range(self.config.conv_stages):
            x = nn.Conv(self.config.depth * 2**i, (4, 4), strides=(2, 2), padding="SAME")(x)
            x = nn.silu(nn.LayerNorm()(x))
        return x.reshape(lead + (-1,))


class ConvDecoder(nn.Module):
    """feat [..., F] -> images [..., H, W, C] predicting pixels/255 - 0.5 (encoder mirrored)."""

    config: RSSMConfig

    @nn.compact
    def __call__(self, feat: jax.Array) -> jax.Array:
        c = self.config
        lead = feat.shape[:-1]
        top = c.depth * 2 ** (c.conv_stages - 1)
        x = nn.Dense(4 * 4 * top)(feat.reshape((-1, feat.shape[-1])))
        x = nn.silu(nn.LayerNorm()(x.reshape((-1, 4, 4, top))))
        for i in reversed(range(c.conv_stages - 1)):
            x = nn.ConvTranspose(c.depth * 2**i, (4, 4), strides=(2, 2), padding="SAME")(x)
            x = nn.silu(nn.LayerNorm()(x))
        x = nn.ConvTranspose(c.image_channels, (4, 4), strides=(2, 2), padding="SAME")(x)
        return x.reshape(lead + x.shape[1:])


class RSSMNet(nn.Module):
    """All RSSM networks; see the module docstring for the methods. obs_shape: (obs_size,) for
    the MLP encoder, (image_size, image_size, image_channels) for the conv encoder."""

    config: RSSMConfig
    obs_shape: tuple[int, ...]
    stats_size: int

    def setup(self):
        c = self.config
        self.core_in = MLP(c.hidden, 1)
        self.gru = nn.GRUCell(features=c.deter,
                              recurrent_kernel_init=orthogonal_one_key_at_a_time())
        self.prior_net = MLP(c.hidden, 1)
        self.prior_out = nn.Dense(self.stats_size)
        self.post_net = MLP(c.hidden, 1)
        self.post_out = nn.Dense(self.stats_size)
        if c.encoder == "conv":
            self.encoder, self.decoder = ConvEncoder(c), ConvDecoder(c)
        else:
            self.encoder = MLP(c.hidden, c.layers)
            self.decoder = nn.Sequential([MLP(c.hidden, c.layers), nn.Dense(self.obs_shape[-1])])
        self.reward_net = MLP(c.hidden, c.layers)
        # Zero output weights (DreamerV3): the first predictions are 0, not a random large value
        # that the twohot loss then has to unlearn.
        self.reward_out = nn.Dense(c.bins, kernel_init=nn.initializers.zeros)
        self.cont_net = MLP(c.hidden, c.layers)
        self.cont_out = nn.Dense(1)

    def core(self, deter: jax.Array, stoch: jax.Array, action: jax.Array) -> jax.Array:
        new, _ = self.gru(deter, self.core_in(jnp.concatenate([stoch, action], -1)))
        return new

    def prior(self, deter: jax.Array) -> jax.Array:
        return self.prior_out(self.prior_net(deter))

    def posterior(self, deter: jax.Array, embed: jax.Array) -> jax.Array:
        return self.post_out(self.post_net(jnp.concatenate([deter, embed], -1)))

    def encode(self, obs: jax.Array) -> jax.Array:
        if self.config.encoder == "conv":
            return self.encoder(obs)
        return self.encoder(symlog(obs.astype(jnp.float32)))

    def decode(self, feat: jax.Array) -> jax.Array:
        return self.decoder(feat)

    def reward(self, feat: jax.Array) -> jax.Array:
        return self.reward_out(self.reward_net(feat))

    def cont(self, feat: jax.Array) -> jax.Array:
        return self.cont_out(self.cont_net(feat))[..., 0]

    def __call__(self, obs: jax.Array, action: jax.Array) -> tuple:
        """Touches every network once (for `init`): obs [B, *obs_shape], action [B, A]."""
        c = self.config
        batch = action.shape[0]
        deter = jnp.zeros((batch, c.deter))
        stoch = jnp.zeros((batch, c.stoch_size))
        deter = self.core(deter, stoch, action)
        feat = jnp.concatenate([deter, stoch], -1)
        return (self.prior(deter), self.posterior(deter, self.encode(obs)), self.decode(feat),
                self.reward(feat), self.cont(feat))
