"""The PPO parts of MB-PPO: a Gaussian actor with a state-independent log-std and a critic (flax
MLPs), imagined rollouts through one elite per rollout, and the clipped-surrogate update.

Shapes: N rollouts, H steps, K elites, S observation size, A actions.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from mbjax.agents.mbppo.config import PPOConfig
from mbjax.agents.mbppo.gae import gae
from mbjax.agents.sac.distribution import gaussian_log_prob
from mbjax.agents.sac.networks import MLP


class Nets(NamedTuple):
    actor: MLP
    critic: MLP


class Batch(NamedTuple):
    """Imagined rollouts, time-major: obs [H, N, S], raw Gaussian action [H, N, A] (the env and
    model get it clipped to [-1, 1]), log_prob [H, N], reward, done, alive [H, N]; last_obs
    [N, S]."""

    obs: jax.Array
    action: jax.Array
    log_prob: jax.Array
    reward: jax.Array
    done: jax.Array
    alive: jax.Array
    last_obs: jax.Array


def make_nets(config: PPOConfig, action_size: int) -> Nets:
    return Nets(MLP(tuple(config.hidden_sizes), action_size), MLP(tuple(config.hidden_sizes), 1))


def init_params(nets: Nets, config: PPOConfig, obs_size: int, action_size: int,
                key: jax.Array) -> dict:
    k_a, k_c = jax.random.split(key)
    x = jnp.zeros((1, obs_size))
    return {"actor": nets.actor.init(k_a, x), "critic": nets.critic.init(k_c, x),
            "log_std": jnp.full((action_size,), config.init_log_std, jnp.float32)}


def _network_of(params: dict) -> dict:
    """Optimizer group labels: the critic alone, the actor with its log-std."""
    return {name: "critic" if name == "critic" else "actor" for name in params}


def make_optimizer(config: PPOConfig) -> optax.GradientTransformation:
    """Global-norm clipping per network (actor, critic), then Adam; the learning rate a float32
    leaf of the state (`inject_hyperparams`, for `grid_leaves`)."""
    def chain(learning_rate):
        clip = optax.clip_by_global_norm(config.max_grad_norm)
        per_network = optax.multi_transform({"actor": clip, "critic": clip}, _network_of)
        return optax.chain(per_network, optax.adam(learning_rate))

    return optax.inject_hyperparams(chain)(learning_rate=config.learning_rate)


def policy_mean(nets: Nets, params: dict, obs: jax.Array) -> jax.Array:
    """The Gaussian's mean tanh(actor(obs)) [..., A]: inside the action box, so that it cannot
    drift where every sample clips to the same bound (no advantage signal left: a policy
    pinned at full push stays there)."""
    return jnp.tanh(nets.actor.apply(params["actor"], obs))


def sample(nets: Nets, params: dict, obs: jax.Array, key: jax.Array):
    """(raw action [..., A], log_prob [...]) from the Gaussian policy at obs [..., S]."""
    mean = policy_mean(nets, params, obs)
    log_std = jnp.broadcast_to(params["log_std"], mean.shape)
    raw = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)
    return raw, gaussian_log_prob(raw, mean, log_std)


def mean_action(nets: Nets, params: dict, obs: jax.Array) -> jax.Array:
    """The deterministic action, the Gaussian's mean: obs [..., S] -> [..., A] in [-1, 1]."""
    return policy_mean(nets, params, obs)


def value(nets: Nets, params: dict, obs: jax.Array) -> jax.Array:
    return nets.critic.apply(params["critic"], obs)[..., 0]


def imagine(nets: Nets, transition: Callable, model_state: Any, elites: jax.Array,
            params: dict, starts: jax.Array, horizon: int, key: jax.Array) -> Batch:
    """N rollouts from starts [N, S], rollout n through elite n % K... (rows split evenly over
    the K elites, each keeping its member for the whole horizon: ME-TRPO's per-rollout model)."""
    k = elites.shape[0]
    n, s = starts.shape

    def body(carry, key_t):
        x, alive = carry
        k_act, k_model = jax.random.split(key_t)
        raw, logp = sample(nets, params, x, k_act)
        out = transition(model_state, x.reshape(k, n // k, s),
                         jnp.clip(raw, -1.0, 1.0).reshape(k, n // k, -1), k_model, elites)
        flat = jax.tree_util.tree_map(lambda v: v.reshape((n,) + v.shape[2:]), out)
        return (flat.next_obs, alive * (1.0 - flat.done)), (x, raw, logp, flat.reward,
                                                             flat.done, alive)

    (last, _), (obs, act, logp, rew, done, alive) = jax.lax.scan(
        body, (starts, jnp.ones((n,))), jax.random.split(key, horizon))
    return Batch(obs, act, logp, rew, done, alive, last)


def member_scores(nets: Nets, transition: Callable, model_state: Any, elites: jax.Array,
                  params: dict, starts: jax.Array, horizon: int, key: jax.Array) -> jax.Array:
    """Mean imagined return [K] of the deterministic policy under each elite, from the same
    starts [N, S] and noise (ME-TRPO's per-model validation)."""
    k = elites.shape[0]
    x0 = jnp.broadcast_to(starts, (k,) + starts.shape)

    def body(carry, key_t):
        x, alive, total = carry
        out = transition(model_state, x, mean_action(nets, params, x), key_t, elites)
        return (out.next_obs, alive * (1.0 - out.done), total + alive * out.reward), None

    (_, _, total), _ = jax.lax.scan(body, (x0, jnp.ones(x0.shape[:2]), jnp.zeros(x0.shape[:2])),
                                    jax.random.split(key, horizon))
    return jnp.mean(total, axis=1)


def ppo_loss(nets: Nets, config: PPOConfig, params: dict, mb: dict) -> tuple[jax.Array, dict]:
    """Clipped surrogate + value + entropy on one minibatch (leaves [B, ...], weights `w`)."""
    mean = policy_mean(nets, params, mb["obs"])
    log_std = jnp.broadcast_to(params["log_std"], mean.shape)
    logp = gaussian_log_prob(mb["action"], mean, log_std)
    ratio = jnp.exp(logp - mb["log_prob"])
    adv = mb["adv"]
    surrogate = jnp.minimum(ratio * adv,
                            jnp.clip(ratio, 1 - config.clip, 1 + config.clip) * adv)
    w = mb["w"] / jnp.maximum(jnp.sum(mb["w"]), 1e-8)
    v_loss = 0.5 * jnp.sum(w * (value(nets, params, mb["obs"]) - mb["ret"]) ** 2)
    entropy = jnp.sum(params["log_std"] + 0.5 * jnp.log(2 * jnp.pi * jnp.e))
    pg = -jnp.sum(w * surrogate)
    loss = pg + config.value_coef * v_loss - config.entropy_coef * entropy
    return loss, {"policy_loss": pg, "value_loss": v_loss}


def ppo_update(nets: Nets, config: PPOConfig, optimizer: optax.GradientTransformation,
               params: dict, opt_state: Any, batch: Batch, key: jax.Array):
    """GAE on the batch, then epochs x minibatches of Adam steps. -> (params, opt_state, info)."""
    values = value(nets, params, batch.obs)
    adv, ret = gae(batch.reward, values, value(nets, params, batch.last_obs),
                   batch.done, batch.alive, config.discount, config.gae_lambda)
    w = batch.alive
    mu = jnp.sum(w * adv) / jnp.sum(w)
    sd = jnp.sqrt(jnp.sum(w * (adv - mu) ** 2) / jnp.sum(w)) + 1e-8
    flat = {"obs": batch.obs, "action": batch.action, "log_prob": batch.log_prob,
            "adv": (adv - mu) / sd, "ret": ret, "w": w}
    flat = jax.tree_util.tree_map(lambda v: v.reshape((-1,) + v.shape[2:]), flat)
    size = flat["w"].shape[0]
    mb_size = size // config.minibatches

    def epoch(carry, k):
        perm = jax.random.permutation(k, size).reshape(config.minibatches, mb_size)

        def step(c, idx):
            p, s = c
            mb = jax.tree_util.tree_map(lambda v: v[idx], flat)
            (_, info), grads = jax.value_and_grad(
                lambda q: ppo_loss(nets, config, q, mb), has_aux=True)(p)
            updates, s = optimizer.update(grads, s, p)
            return (optax.apply_updates(p, updates), s), info

        return jax.lax.scan(step, carry, perm)

    (params, opt_state), info = jax.lax.scan(epoch, (params, opt_state),
                                             jax.random.split(key, config.epochs))
    return params, opt_state, jax.tree_util.tree_map(jnp.mean, info)
