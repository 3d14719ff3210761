"""SAC networks: an MLP policy head (mean, log-std) and an ensemble of Q critics.

Networks are flax.linen modules used functionally (`init` / `apply` on explicit params).
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


class MLP(nn.Module):
    """ReLU MLP: [..., in] -> [..., out]."""

    hidden_sizes: Sequence[int]
    out_size: int
    final_init_scale: float = 1.0

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for size in self.hidden_sizes:
            x = nn.relu(nn.Dense(size)(x))
        kernel_init = nn.initializers.variance_scaling(
            self.final_init_scale, "fan_in", "truncated_normal"
        )
        return nn.Dense(self.out_size, kernel_init=kernel_init)(x)


class PolicyNetwork(nn.Module):
    """obs [..., obs_dim] -> (mean [..., A], log_std [..., A]) of the pre-tanh Gaussian."""

    hidden_sizes: Sequence[int]
    action_size: int
    log_std_min: float
    log_std_max: float

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        # A small final layer keeps the initial policy near tanh(0) with moderate spread.
        out = MLP(self.hidden_sizes, 2 * self.action_size, final_init_scale=0.01)(obs)
        mean, raw = jnp.split(out, 2, axis=-1)
        # Smoothly bounded log-std: avoids both collapse and exploding variance early on.
        log_std = self.log_std_min + 0.5 * (self.log_std_max - self.log_std_min) * (
            jnp.tanh(raw) + 1.0
        )
        return mean, log_std


class _QNetwork(nn.Module):
    hidden_sizes: Sequence[int]
    final_init_scale: float = 1.0

    @nn.compact
    def __call__(self, obs: jax.Array, action: jax.Array) -> jax.Array:
        x = jnp.concatenate([obs, action], axis=-1)
        return MLP(self.hidden_sizes, 1, final_init_scale=self.final_init_scale)(x)[..., 0]


class CriticNetwork(nn.Module):
    """(obs [..., obs_dim], action [..., A]) -> Q values [num_critics, ...].

    The critics are one vmapped module (params stacked on a leading axis), so all of them are
    evaluated as a single batched matmul chain. final_init_scale scales the output layer's init
    (0: every Q starts at exactly 0).
    """

    hidden_sizes: Sequence[int]
    num_critics: int = 2
    final_init_scale: float = 1.0

    @nn.compact
    def __call__(self, obs: jax.Array, action: jax.Array) -> jax.Array:
        ensemble = nn.vmap(
            _QNetwork,
            variable_axes={"params": 0},
            split_rngs={"params": True},
            in_axes=None,
            out_axes=0,
            axis_size=self.num_critics,
        )
        return ensemble(self.hidden_sizes, self.final_init_scale)(obs, action)
