"""The RSSM world model: filtering (`observe`), imagination (`imagine_step`), heads, losses, a
compiled `fit`, and the dynamics-model protocol (`mbjax.models.base`).

Time convention (one stream of transitions from the replay buffer): at step t the model sees
obs[t] = the transition's `next_obs`, the action actions[t] that led to it, the reward[t] and
cont[t] = 1 - terminated[t] that came with it. So

    deter[t]  = GRU(deter[t-1], stoch[t-1], actions[t])    (zeros and a zero action where
                                                            is_first[t]: a new sequence)
    prior[t]  = p(stoch[t] | deter[t]);  posterior[t] = q(stoch[t] | deter[t], embed(obs[t]))

and the reward / continue heads read the latent feat[t] = concat(deter[t], stoch[t]) reached
by the action. The protocol's `step(x, a)` is the same prior transition: x' = imagine_step(x, a),
reward = the reward head's mean at x', termination_prob = 1 - P(continue) at x'.

The protocol's state x is the LATENT (state_size = deter + stoch * max(classes, 1)), not the
observation: an agent keeps the filter itself. It starts from `initial(batch)`, and after each
env step calls `filter_step(params, latent, action, next_obs, is_first, key)` (the posterior),
then plans from `feature(latent)` with `step`. `fit` reads a ReplayBuffer of Transitions as every
model does; `observation_shape` says which observations it expects.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from mbjax import optim, replay
from mbjax.models.rssm import latent as lat
from mbjax.models.rssm import losses
from mbjax.models.rssm.config import RSSMConfig
from mbjax.models.rssm.networks import RSSMNet
from mbjax.models.rssm.transforms import bins as make_bins
from mbjax.models.rssm.transforms import twohot_loss, twohot_mean
from mbjax.models.state import ModelStep
from mbjax.models.training import all_finite, finite_rows


class RSSMState(NamedTuple):
    """params: the flax params of `RSSMNet`; opt_state: Adam's (learning rate a leaf)."""

    params: Any
    opt_state: Any


class Observed(NamedTuple):
    """`observe`'s output, leaves [B, T, ...]: the posterior latents and both stats."""

    post: lat.Latent
    post_stats: jax.Array
    prior_stats: jax.Array


class SeqBatch(NamedTuple):
    """Training sequences: obs [B, T, *obs_shape], action [B, T, A] (the one that led to obs),
    reward [B, T], cont [B, T], is_first [B, T], weight [B] (0: skip the sequence)."""

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    cont: jax.Array
    is_first: jax.Array
    weight: jax.Array


class Functions(NamedTuple):
    """The functional RSSM (closed over its config and networks); shapes in `make_functions`."""

    init_params: Callable
    filter_step: Callable
    observe: Callable
    imagine_step: Callable
    decode: Callable
    reward: Callable
    cont_prob: Callable
    loss_terms: Callable
    loss: Callable
    loss_and_posterior: Callable | None = None


def _reset(latent: lat.Latent, action: jax.Array, is_first: jax.Array):
    """Zero the latent and the action where is_first [...] (a sequence starts afresh)."""
    keep = (1.0 - is_first.astype(jnp.float32))[..., None]
    return lat.Latent(latent.deter * keep, latent.stoch * keep), action * keep


def make_functions(config: RSSMConfig, obs_shape: tuple[int, ...], action_size: int) -> Functions:
    """The RSSM's pure functions (params first; [...] is any batch shape):

    init_params(key) -> params
    filter_step(params, latent [...], action [..., A], obs [..., *obs_shape], is_first [...], key)
        -> (posterior latent, post_stats, prior_stats): one filter update
    observe(params, obs [B, T, *obs_shape], actions [B, T, A], is_first [B, T], key) -> Observed
        (a lax.scan of filter_step over T; latents start from zeros)
    imagine_step(params, latent [...], action [..., A], key | None) -> latent: the prior
        transition (key None: the prior's mode)
    decode(params, latent) -> reconstruction [..., *obs_shape]; reward(params, latent) -> [...]
        (the twohot head's mean); cont_prob(params, latent) -> P(continue) [...]
    loss_terms(params, batch: SeqBatch, key) -> LossTerms [B, T]
    loss(params, batch, key) -> (scalar, metrics)
    loss_and_posterior(params, batch, key) -> (scalar, (metrics, posterior Latent [B, T])): the
        same loss, also returning the filter's posterior latents (Dreamer imagines from them
        without filtering the batch a second time)
    """
    net = RSSMNet(config, tuple(obs_shape), lat.stats_size(config))
    bin_values = make_bins(config.bins, config.bin_range)

    def call(params, method, *args):
        return net.apply(params, *args, method=method)

    def init_params(key):
        return net.init(key, jnp.zeros((1,) + tuple(obs_shape)), jnp.zeros((1, action_size)))

    def posterior_step(params, latent, action, embed, is_first, key):
        latent, action = _reset(latent, action, is_first)
        deter = call(params, RSSMNet.core, latent.deter, latent.stoch, action)
        prior = lat.dist_stats(config, call(params, RSSMNet.prior, deter))
        post = lat.dist_stats(config, call(params, RSSMNet.posterior, deter, embed))
        return lat.Latent(deter, lat.sample(config, post, key)), post, prior

    def filter_step(params, latent, action, obs, is_first, key):
        embed = call(params, RSSMNet.encode, obs)
        return posterior_step(params, latent, action, embed, is_first, key)

    def observe(params, obs, actions, is_first, key):
        batch, steps = actions.shape[:2]
        # Encode all frames at once (one big conv call) outside the sequential scan.
        embed = call(params, RSSMNet.encode, obs)

        def body(latent, xs):
            new, post, prior = posterior_step(params, latent, *xs)
            return new, (new, post, prior)

        time_major = lambda x: jnp.swapaxes(x, 0, 1)  # noqa: E731
        xs = (time_major(actions), time_major(embed), time_major(is_first),
              jax.random.split(key, steps))
        _, (post, post_stats, prior_stats) = jax.lax.scan(body, lat.initial(config, (batch,)), xs)
        return Observed(*jax.tree.map(time_major, (post, post_stats, prior_stats)))

    def imagine_step(params, latent, action, key):
        deter = call(params, RSSMNet.core, latent.deter, latent.stoch, action)
        prior = lat.dist_stats(config, call(params, RSSMNet.prior, deter))
        stoch = lat.mode(config, prior) if key is None else lat.sample(config, prior, key)
        return lat.Latent(deter, stoch)

    def decode(params, latent):
        return call(params, RSSMNet.decode, lat.feature(latent))

    def reward(params, latent):
        return twohot_mean(call(params, RSSMNet.reward, lat.feature(latent)), bin_values)

    def cont_prob(params, latent):
        return jax.nn.sigmoid(call(params, RSSMNet.cont, lat.feature(latent)))

    def loss_terms(params, batch: SeqBatch, key):
        return terms_and_posterior(params, batch, key)[0]

    def terms_and_posterior(params, batch: SeqBatch, key):
        out = observe(params, batch.obs, batch.action, batch.is_first, key)
        feat = lat.feature(out.post)
        rec = losses.reconstruction_loss(config, call(params, RSSMNet.decode, feat), batch.obs)
        rew_logits = call(params, RSSMNet.reward, feat)
        rew = twohot_loss(rew_logits, batch.reward, bin_values)
        con = losses.continue_loss(call(params, RSSMNet.cont, feat), batch.cont)
        kl = losses.kl_balance(config, out.post_stats, out.prior_stats)
        return losses.LossTerms(rec, rew, con, kl.dyn, kl.rep, kl.kl), out.post

    def loss(params, batch: SeqBatch, key):
        return losses.total_loss(config, loss_terms(params, batch, key), batch.weight)

    def loss_and_posterior(params, batch: SeqBatch, key):
        terms, post = terms_and_posterior(params, batch, key)
        loss, metrics = losses.total_loss(config, terms, batch.weight)
        return loss, (metrics, post)

    return Functions(init_params, filter_step, observe, imagine_step, decode, reward, cont_prob,
                     loss_terms, loss, loss_and_posterior)


def sequences_to_batch(seq: replay.Sequences) -> SeqBatch:
    """Sampled Transition chunks (leaves [B, T, ...]) -> SeqBatch (see the time convention).

    Sequences holding a NaN/Inf (obs, action or reward) get weight 0 and their values zeroed, so
    neither reaches the loss or its gradient; invalid samples (`seq.valid` False) get weight 0.
    """
    d = seq.data
    batch, steps = d.reward.shape[:2]
    flat = lambda x: x.reshape((batch, -1))  # noqa: E731
    ok = finite_rows(flat(d.next_obs), flat(d.action), flat(d.reward), flat(d.terminated))
    clean = lambda x: jnp.where(ok.reshape((batch,) + (1,) * (x.ndim - 1)), x, jnp.zeros_like(x))  # noqa: E731
    is_first = jnp.zeros((batch, steps)).at[:, 0].set(1.0)
    return SeqBatch(clean(d.next_obs), clean(d.action), clean(d.reward),
                    1.0 - clean(d.terminated), is_first,
                    (ok & seq.valid).astype(jnp.float32))


def make_optimizer(config: RSSMConfig) -> optax.GradientTransformation:
    """Global-norm clipping then Adam, the learning rate a float32 leaf of the state."""
    def chain(learning_rate):
        return optax.chain(optax.clip_by_global_norm(config.grad_clip),
                           optax.adam(learning_rate, eps=config.adam_eps))
    return optax.inject_hyperparams(chain)(learning_rate=config.learning_rate)


def set_learning_rate(state: RSSMState, learning_rate: Any) -> RSSMState:
    """The same state with Adam's learning rate replaced (no recompilation of `fit`)."""
    return state._replace(
        opt_state=optim.set_hyperparams(state.opt_state, learning_rate=learning_rate))


def make_fit(config: RSSMConfig, fns: Functions, optimizer: optax.GradientTransformation):
    """fit(state, buffer, key) -> (state, metrics): `config.fit_steps` Adam steps in one
    lax.scan, each on `batch_size` sequences of `seq_len` from `replay.sample_sequences`.

    A step whose loss or gradient is non-finite, or that drew no valid sequence, leaves the
    state unchanged (the former sets `nonfinite`). Metrics (scalars): `train_loss` (mean loss
    over the steps), `first_loss` / `last_loss`, the mean of each loss term (`rec_loss`,
    `rew_loss`, `con_loss`, `dyn_loss`, `rep_loss`, `kl_loss`), `holdout_loss` (the loss of
    the fitted params on a fresh sample of sequences, without an update: sequences are not split
    into train/holdout episodes here), `skipped_steps`, `nonfinite`.
    """
    grad_fn = jax.value_and_grad(fns.loss, has_aux=True)

    def train_step(state: RSSMState, xs):
        buffer, key = xs
        k_seq, k_loss = jax.random.split(key)
        batch = sequences_to_batch(
            replay.sample_sequences(buffer, k_seq, config.batch_size, config.seq_len))
        (loss, metrics), grads = grad_fn(state.params, batch, k_loss)
        finite = jnp.isfinite(loss) & all_finite(grads)
        apply = finite & (jnp.sum(batch.weight) > 0)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        new = RSSMState(optax.apply_updates(state.params, updates), opt_state)
        state = jax.tree.map(lambda n, o: jnp.where(apply, n, o), new, state)
        return state, (metrics, ~finite, ~apply)

    def fit(state: RSSMState, buffer: replay.ReplayBuffer, key: jax.Array):
        k_fit, k_seq, k_loss = jax.random.split(key, 3)
        keys = jax.random.split(k_fit, config.fit_steps)
        state, (m, nonfinite, skipped) = jax.lax.scan(
            lambda s, k: train_step(s, (buffer, k)), state, keys)
        batch = sequences_to_batch(
            replay.sample_sequences(buffer, k_seq, config.batch_size, config.seq_len))
        holdout, _ = fns.loss(state.params, batch, k_loss)
        metrics = {name: jnp.mean(value) for name, value in m.items() if name != "loss"}
        metrics.update(train_loss=jnp.mean(m["loss"]), first_loss=m["loss"][0],
                       last_loss=m["loss"][-1], holdout_loss=holdout,
                       skipped_steps=jnp.sum(skipped), nonfinite=jnp.any(nonfinite))
        return state, metrics

    return fit


class RSSMModel(NamedTuple):
    """The RSSM as a dynamics model (`mbjax.models.base` protocol) plus its functional pieces.

    Protocol: state_size = deter + stoch * max(classes, 1) (the flat latent x), action_size,
    num_members = num_elites = 1, has_reward, has_termination (the continue head), init, fit,
    step, elites. Extra: `config`, `observation_shape` (what `fit` and `fns.observe` read),
    `fns` (Functions: observe, filter_step, imagine_step, heads, losses), `initial(batch_shape)
    -> Latent`, `feature(latent) -> x`, `latent(x) -> Latent`, `set_learning_rate`.
    """

    config: RSSMConfig
    observation_shape: tuple[int, ...]
    state_size: int
    action_size: int
    num_members: int
    num_elites: int
    has_reward: bool
    has_termination: bool
    init: Callable
    fit: Callable
    step: Callable
    elites: Callable
    fns: Functions
    initial: Callable
    feature: Callable
    latent: Callable
    set_learning_rate: Callable


def _obs_shape(config: RSSMConfig, obs_shape: Any) -> tuple[int, ...]:
    """Checks obs_shape against the encoder kind; returns it as a tuple."""
    shape = tuple(obs_shape) if isinstance(obs_shape, (tuple, list)) else (obs_shape,)
    if config.encoder == "conv":
        want = (config.image_size, config.image_size, config.image_channels)
        if shape != want:
            raise ValueError(f"make_rssm: obs_shape={shape} is invalid; allowed: {want} "
                             "(RSSMConfig image_size/image_channels with encoder='conv')")
    elif len(shape) != 1 or shape[0] < 1:
        raise ValueError(f"make_rssm: obs_shape={shape} is invalid; allowed: (obs_size,) with "
                         "encoder='mlp' (images need encoder='conv')")
    return shape


def make_rssm(config: RSSMConfig, obs_shape: int | tuple[int, ...], action_size: int) -> RSSMModel:
    """An RSSM for observations of `obs_shape` (an int for vectors, (H, W, C) for images) and
    actions [action_size]; see RSSMModel and the module docstring."""
    from mbjax import validation
    validation.check_int("make_rssm: action_size", action_size)
    shape = _obs_shape(config, obs_shape)
    fns = make_functions(config, shape, action_size)
    optimizer = make_optimizer(config)

    def init(key: jax.Array) -> RSSMState:
        params = fns.init_params(key)
        return RSSMState(params, optimizer.init(params))

    def step(state: RSSMState, x: jax.Array, action: jax.Array, key, members=None) -> ModelStep:
        # One member: `members` can only select member 0, so it does not change the result.
        nxt = fns.imagine_step(state.params, lat.from_feature(config, x), action, key)
        return ModelStep(lat.feature(nxt), fns.reward(state.params, nxt),
                         1.0 - fns.cont_prob(state.params, nxt))

    return RSSMModel(
        config=config, observation_shape=shape, state_size=config.latent_size,
        action_size=action_size, num_members=1, num_elites=1, has_reward=True,
        has_termination=True, init=init, fit=make_fit(config, fns, optimizer), step=step,
        elites=lambda state: jnp.zeros((1,), jnp.int32), fns=fns,
        initial=lambda batch_shape: lat.initial(config, tuple(batch_shape)),
        feature=lat.feature, latent=lambda x: lat.from_feature(config, x),
        set_learning_rate=set_learning_rate,
    )
