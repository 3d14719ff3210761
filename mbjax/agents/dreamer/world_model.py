"""One world-model update of Dreamer: sample sequences from the per-env replay buffers, one
clipped-Adam step on the RSSM's DreamerV3 loss, and the posterior latents of that batch (the
starts of the imagination that follows).

The RSSM (`mbjax.models.rssm`) owns the loss and its optimizer; this module only batches the
per-env buffers (`replay.sample_sequences` assumes one stream of consecutive steps per buffer,
so each env keeps its own buffer: leaves [num_envs, capacity, ...]) and keeps the update's
posterior, which `RSSMModel.fit` (a loop of updates) does not return.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from mbjax import replay
from mbjax.models.rssm import latent as lat
from mbjax.models.rssm.model import RSSMModel, RSSMState, SeqBatch, sequences_to_batch
from mbjax.models.training import all_finite


def sample_batch(buffers: replay.ReplayBuffer, key: jax.Array, batch_size: int,
                 seq_len: int) -> SeqBatch:
    """batch_size sequences of seq_len from per-env buffers (leaves [E, C, ...]), batch_size /
    E from each env -> SeqBatch leaves [batch_size, seq_len, ...]."""
    num_envs = jax.tree.leaves(buffers.data)[0].shape[0]
    keys = jax.random.split(key, num_envs)
    seq = jax.vmap(replay.sample_sequences, in_axes=(0, 0, None, None))(
        buffers, keys, batch_size // num_envs, seq_len)
    merge = lambda x: x.reshape((batch_size,) + x.shape[2:])  # noqa: E731
    return sequences_to_batch(jax.tree.map(merge, seq))


def update(model: RSSMModel, optimizer: optax.GradientTransformation, state: RSSMState,
           batch: SeqBatch, key: jax.Array) -> tuple[RSSMState, lat.Latent, jax.Array, dict]:
    """One Adam step on `batch` -> (state, posterior Latent [N] with N = B * T, start_cont [N],
    metrics). The step is skipped (state unchanged, metric `nonfinite` set) when the loss or a
    gradient is not finite, or when the batch holds no valid sequence. start_cont is the
    replay's continue flag times the sequence weight: imagination from a terminal or invalid
    state counts for nothing."""
    grad_fn = jax.value_and_grad(model.fns.loss_and_posterior, has_aux=True)
    (loss, (metrics, post)), grads = grad_fn(state.params, batch, key)
    finite = jnp.isfinite(loss) & all_finite(grads)
    apply = finite & (jnp.sum(batch.weight) > 0)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    new = RSSMState(optax.apply_updates(state.params, updates), opt_state)
    state = jax.tree.map(lambda n, o: jnp.where(apply, n, o), new, state)
    flat = lambda x: jax.lax.stop_gradient(x.reshape((-1,) + x.shape[2:]))  # noqa: E731
    start_cont = (batch.cont * batch.weight[:, None]).reshape(-1)
    metrics = {f"model_{name}": value for name, value in metrics.items()}
    metrics["nonfinite"] = ~finite
    return state, jax.tree.map(flat, post), start_cont, metrics

