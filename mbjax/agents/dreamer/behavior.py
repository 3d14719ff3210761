"""Behaviour learning in imagination: the actor and critic of Dreamer (Hafner et al. 2020) with
DreamerV3's changes (Hafner et al. 2023, "Critic learning", "Actor learning").

From every posterior state of a world-model batch (N = B * T starts, no gradient into the
model), the actor imagines `horizon` steps with the RSSM prior: latents s_0..s_H, actions
a_0..a_{H-1}, rewards r_1..r_H and continue probabilities c_1..c_H from the model's heads, and
critic values v_0..v_H. Then (weights w_t = start_cont * prod_{k<=t} gamma c_k, see
`returns.discount_weights`):

    R_t       lambda-returns from the critic's values (`returns.lambda_returns`)
    S         max(1, EMA of P95(R) - P5(R))           (`returns.update_return_norm`)
    actor     "reinforce":  -sum_t w_t [log pi(a_t | s_t) sg((R_t - v_t) / S) + eta H(pi(s_t))]
              "dynamics":   -sum_t w_t [R_t / S + eta H(pi(s_t))], R_t backpropagated through
                            the model's prior, reward and continue heads (Dreamer v1/v2)
    critic    twohot cross-entropy of the critic at s_t against symlog(sg(R_t)), plus
              slow_critic_reg * the cross-entropy against the slow critic's prediction
              (the slow critic is an EMA of the critic's params: a regulariser, not a target
              network; bootstrapping uses the critic itself, as DreamerV3)

Why both actor gradients: DreamerV3 uses REINFORCE for every action space (one setting for
all domains); backpropagating the returns through the learned dynamics (Dreamer v1, DreamerV2
for continuous control) gives a lower-variance gradient, which helps the small batches of the
CPU presets, but needs differentiable (continuous) actions. `Config.actor_grad` chooses.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from mbjax import optim
from mbjax.agents.dreamer import networks, returns
from mbjax.agents.dreamer.config import Config
from mbjax.models.rssm import latent as lat
from mbjax.models.rssm.model import RSSMModel
from mbjax.models.rssm.transforms import bins as make_bins
from mbjax.models.rssm.transforms import twohot_loss, twohot_mean
from mbjax.models.training import all_finite

sg = jax.lax.stop_gradient


class Hyper(NamedTuple):
    """float32 [] leaves of the behaviour state (grid axes): the entropy coefficient eta,
    discount gamma, lambda, the slow critic's EMA rate and the return normaliser's rate."""

    entropy: jax.Array
    discount: jax.Array
    lam: jax.Array
    slow_critic_rate: jax.Array
    return_norm_rate: jax.Array


class BehaviorState(NamedTuple):
    """actor / critic / slow critic params, the two Adam states (learning rates as leaves),
    the return normaliser, hparams and updates (int32 [], for the slow critic's period)."""

    actor_params: Any
    critic_params: Any
    slow_critic_params: Any
    actor_opt: Any
    critic_opt: Any
    return_norm: returns.ReturnNorm
    hparams: Hyper
    updates: jax.Array


class Imagined(NamedTuple):
    """An imagined batch, time-major: feat [H + 1, N, F]; action [H, N, A]; log_prob, entropy
    [H, N]; reward, cont [H, N] (reached at steps 1..H)."""

    feat: jax.Array
    action: jax.Array
    log_prob: jax.Array
    entropy: jax.Array
    reward: jax.Array
    cont: jax.Array


class Behavior(NamedTuple):
    """The behaviour learner's functions (pure).

    init(key) -> BehaviorState
    dist(actor_params, feat [..., F]) -> networks.PolicyDist
    act(actor_params, feat [..., F], key, deterministic) -> action [..., A] (one-hot if discrete)
    imagine(model_params, actor_params, start Latent [N], key) -> Imagined
    update(state, model_params, start Latent [N], start_cont [N], key) -> (state, metrics)
    """

    init: Callable
    dist: Callable
    act: Callable
    imagine: Callable
    update: Callable


def make_optimizer(config: Config, learning_rate: float) -> optax.GradientTransformation:
    """Global-norm clipping then Adam; the learning rate a float32 leaf (inject_hyperparams)."""
    def chain(learning_rate):
        return optax.chain(optax.clip_by_global_norm(config.grad_clip),
                           optax.adam(learning_rate, eps=config.adam_eps))
    return optax.inject_hyperparams(chain)(learning_rate=learning_rate)


def set_learning_rates(state: BehaviorState, actor_lr: Any = None,
                       critic_lr: Any = None) -> BehaviorState:
    """The state with the actor's and/or the critic's Adam learning rate replaced."""
    if actor_lr is not None:
        state = state._replace(actor_opt=optim.set_hyperparams(state.actor_opt,
                                                               learning_rate=actor_lr))
    if critic_lr is not None:
        state = state._replace(critic_opt=optim.set_hyperparams(state.critic_opt,
                                                                learning_rate=critic_lr))
    return state


def make_behavior(config: Config, model: RSSMModel, num_actions: int, discrete: bool) -> Behavior:
    """The actor-critic for `model`'s latents and `num_actions` action dims (or classes)."""
    if discrete and config.actor_grad == "dynamics":
        raise ValueError("Config.actor_grad='dynamics' is invalid for discrete actions; "
                         "allowed: 'reinforce'")
    actor = networks.Actor(config.hidden, config.layers,
                           num_actions if discrete else 2 * num_actions, config.actor_out_scale)
    critic = networks.Critic(config.hidden, config.layers, model.config.bins)
    bin_values = make_bins(model.config.bins, model.config.bin_range)
    actor_opt = make_optimizer(config, config.actor_lr)
    critic_opt = make_optimizer(config, config.critic_lr)
    dynamics_grad = config.actor_grad == "dynamics"

    def init(key: jax.Array) -> BehaviorState:
        k_actor, k_critic = jax.random.split(key)
        feat = jnp.zeros((1, model.state_size))
        actor_params = actor.init(k_actor, feat)
        critic_params = critic.init(k_critic, feat)
        f32 = lambda v: jnp.asarray(v, jnp.float32)  # noqa: E731
        hp = Hyper(f32(config.entropy), f32(config.discount), f32(config.lam),
                   f32(config.slow_critic_rate), f32(config.return_norm_rate))
        return BehaviorState(actor_params, critic_params, critic_params,
                             actor_opt.init(actor_params), critic_opt.init(critic_params),
                             returns.ReturnNorm.create(), hp, jnp.zeros((), jnp.int32))

    def dist(actor_params, feat):
        return networks.policy_dist(actor.apply(actor_params, feat), discrete, config.min_std,
                                    config.max_std, config.action_unimix)

    def act(actor_params, feat, key, deterministic=False):
        d = dist(actor_params, feat)
        return networks.mode(d) if deterministic else networks.sample(d, key)

    imagine = _make_imagine(config, model, dist, dynamics_grad)
    actor_loss, critic_loss = _make_losses(config, imagine, critic, bin_values, dynamics_grad)

    def update(state: BehaviorState, model_params, start: lat.Latent, start_cont: jax.Array,
               key: jax.Array):
        (a_loss, (metrics, norm, feat, rets, weight)), a_grads = jax.value_and_grad(
            actor_loss, has_aux=True)(state.actor_params, state, model_params, start,
                                      start_cont, key)
        c_loss, c_grads = jax.value_and_grad(critic_loss)(
            state.critic_params, state.slow_critic_params, feat, rets, weight)
        a_updates, a_opt = actor_opt.update(a_grads, state.actor_opt, state.actor_params)
        c_updates, c_opt = critic_opt.update(c_grads, state.critic_opt, state.critic_params)
        critic_params = optax.apply_updates(state.critic_params, c_updates)
        rate = jnp.where(state.updates % config.slow_critic_every == 0,
                         state.hparams.slow_critic_rate, 0.0)
        slow = jax.tree.map(lambda s, c: (1.0 - rate) * s + rate * c,
                            state.slow_critic_params, critic_params)
        new = BehaviorState(optax.apply_updates(state.actor_params, a_updates), critic_params,
                            slow, a_opt, c_opt, norm, state.hparams, state.updates + 1)
        finite = jnp.isfinite(a_loss) & jnp.isfinite(c_loss) & all_finite((a_grads, c_grads))
        metrics.update(critic_loss=c_loss, nonfinite=~finite)
        return new, metrics

    return Behavior(init, dist, act, imagine, update)


def _make_imagine(config: Config, model: RSSMModel, dist: Callable,
                  dynamics_grad: bool) -> Callable:
    """imagine(model_params, actor_params, start Latent [N], key) -> Imagined (module doc)."""
    fns = model.fns

    def imagine(model_params, actor_params, start: lat.Latent, key: jax.Array) -> Imagined:
        def body(latent, k):
            k_act, k_dyn = jax.random.split(k)
            feat = lat.feature(latent)
            d = dist(actor_params, feat)
            action = networks.sample(d, k_act)
            # REINFORCE: the action is a constant for the model (the gradient reaches the
            # actor only through log pi); dynamics: it flows through the prior.
            model_action = action if dynamics_grad else sg(action)
            nxt = fns.imagine_step(model_params, latent, model_action, k_dyn)
            return nxt, (feat, action, networks.log_prob(d, sg(action)), networks.entropy(d),
                         nxt)

        last, (feat, action, logp, ent, nxt) = jax.lax.scan(
            body, start, jax.random.split(key, config.horizon))
        feat = jnp.concatenate([feat, lat.feature(last)[None]], 0)
        return Imagined(feat, action, logp, ent, fns.reward(model_params, nxt),
                        fns.cont_prob(model_params, nxt))

    return imagine


def _make_losses(config: Config, imagine: Callable, critic: networks.Critic,
                 bin_values: jax.Array, dynamics_grad: bool) -> tuple[Callable, Callable]:
    """(actor_loss, critic_loss) of the module docstring; the actor's loss also returns the
    updated return normaliser and the (stopped) features, returns and weights the critic
    trains on."""

    def critic_value(params, feat):
        return twohot_mean(critic.apply(params, feat), bin_values)

    def actor_loss(actor_params, state: BehaviorState, model_params, start, start_cont, key):
        hp = state.hparams
        traj = imagine(sg(model_params), actor_params, sg(start), key)
        if not dynamics_grad:
            traj = traj._replace(feat=sg(traj.feat), reward=sg(traj.reward), cont=sg(traj.cont))
        values = critic_value(sg(state.critic_params), traj.feat)  # [H + 1, N]
        rets = returns.lambda_returns(traj.reward, traj.cont, values, hp.discount, hp.lam)
        weight = sg(returns.discount_weights(traj.cont, hp.discount) * start_cont)
        norm = returns.update_return_norm(state.return_norm, sg(rets), hp.return_norm_rate,
                                          config.return_norm_low, config.return_norm_high)
        scale = returns.return_scale(norm, config.return_norm_limit)
        if dynamics_grad:
            objective = rets / scale
        else:
            objective = traj.log_prob * sg((rets - values[:-1]) / scale)
        loss = -jnp.mean(weight * (objective + hp.entropy * traj.entropy))
        metrics = dict(actor_loss=loss, policy_entropy=jnp.mean(traj.entropy),
                       imagined_reward=jnp.mean(traj.reward), return_scale=scale,
                       lambda_return=jnp.mean(rets), value=jnp.mean(values))
        return loss, (metrics, norm, sg(traj.feat[:-1]), sg(rets), weight)

    def critic_loss(critic_params, slow_params, feat, rets, weight):
        logits = critic.apply(critic_params, feat)
        slow_target = critic_value(slow_params, feat)
        per_step = (twohot_loss(logits, rets, bin_values)
                    + config.slow_critic_reg * twohot_loss(logits, sg(slow_target), bin_values))
        return jnp.mean(weight * per_step)

    return actor_loss, critic_loss
