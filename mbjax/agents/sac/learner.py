"""The SAC learner as a function bundle: `sac = make_sac(config, obs_size, action_size)`.

    state = sac.init(key)
    state, metrics = sac.update(state, batch, key)            # one gradient step, batch: [B, ...]
    state, metrics = sac.update_many(state, sample_fn, key, n) # n steps in one lax.scan
    action = sac.act(state.actor_params, obs, key, deterministic=False)

All functions are pure and jittable; `update` has no Python control flow on traced values, so it
runs inside `lax.scan` / `vmap`. MBPO composes `update_many` with a `sample_fn` that mixes model
rollouts and real data.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from mbjax import validation
from mbjax.agents.sac import distribution, losses
from mbjax.agents.sac import normalizer as obs_normalizer
from mbjax.agents.sac.config import SACConfig
from mbjax.agents.sac.networks import CriticNetwork, PolicyNetwork
from mbjax.types import Transition

Params = Any


@struct.dataclass
class SACHyperparams:
    """Numeric hyperparameters kept as float32 leaves so that sweeps can vmap over them."""

    discount: jax.Array
    tau: jax.Array
    reward_scale: jax.Array
    target_entropy: jax.Array


@struct.dataclass
class ActorParams:
    """Everything `act` needs: policy weights and the observation statistics."""

    policy: Params
    obs_norm: obs_normalizer.RunningMeanStd


@struct.dataclass
class SACState:
    """Learner state. Learning rates live in the optimizer states (optax.inject_hyperparams)."""

    policy_params: Params
    critic_params: Params  # leaves [C, ...]
    target_critic_params: Params  # leaves [C, ...]
    policy_opt_state: optax.OptState
    critic_opt_state: optax.OptState
    alpha_opt_state: optax.OptState
    log_alpha: jax.Array  # []
    obs_norm: obs_normalizer.RunningMeanStd
    hparams: SACHyperparams
    step: jax.Array  # [] int32, number of updates applied

    @property
    def actor_params(self) -> ActorParams:
        return ActorParams(policy=self.policy_params, obs_norm=self.obs_norm)


class SAC(NamedTuple):
    """Function bundle returned by `make_sac`."""

    init: Callable[[jax.Array], SACState]
    update: Callable[[SACState, Transition, jax.Array], tuple[SACState, dict[str, jax.Array]]]
    act: Callable[..., jax.Array]
    update_many: Callable[..., tuple[SACState, dict[str, jax.Array]]]
    observe: Callable[[SACState, jax.Array], SACState]
    networks: losses.SACNetworks
    config: SACConfig
    obs_size: int
    action_size: int


def make_sac(config: SACConfig, obs_size: int, action_size: int) -> SAC:
    """Builds the SAC function bundle for flat observations [obs_size] and actions in [-1, 1]^A."""
    if not isinstance(config, SACConfig):
        raise validation.invalid("make_sac: config", type(config).__name__, "a SACConfig")
    validation.check_int("make_sac: obs_size", obs_size)
    validation.check_int("make_sac: action_size", action_size)

    policy_net = PolicyNetwork(
        config.hidden_sizes, action_size, config.log_std_min, config.log_std_max
    )
    critic_net = CriticNetwork(config.hidden_sizes, config.num_critics)
    nets = losses.SACNetworks(policy_apply=policy_net.apply, critic_apply=critic_net.apply)
    target_entropy = (
        -float(action_size) if config.target_entropy is None else float(config.target_entropy)
    )
    policy_opt = optax.inject_hyperparams(optax.adam)(learning_rate=config.actor_lr)
    critic_opt = optax.inject_hyperparams(optax.adam)(learning_rate=config.critic_lr)
    alpha_opt = optax.inject_hyperparams(optax.adam)(learning_rate=config.alpha_lr)

    def f32(x: float) -> jax.Array:
        # Strongly typed float32, so a state from `init` and one from `update` trace alike.
        return jnp.asarray(x, dtype=jnp.float32)

    def init(key: jax.Array) -> SACState:
        k_policy, k_critic = jax.random.split(key)
        dummy_obs = jnp.zeros((1, obs_size), jnp.float32)
        dummy_act = jnp.zeros((1, action_size), jnp.float32)
        policy_params = policy_net.init(k_policy, dummy_obs)
        critic_params = critic_net.init(k_critic, dummy_obs, dummy_act)
        log_alpha = f32(math.log(config.init_alpha))
        return SACState(
            policy_params=policy_params,
            critic_params=critic_params,
            target_critic_params=critic_params,
            policy_opt_state=policy_opt.init(policy_params),
            critic_opt_state=critic_opt.init(critic_params),
            alpha_opt_state=alpha_opt.init(log_alpha),
            log_alpha=log_alpha,
            obs_norm=obs_normalizer.init(obs_size),
            hparams=SACHyperparams(
                discount=f32(config.discount),
                tau=f32(config.tau),
                reward_scale=f32(config.reward_scale),
                target_entropy=f32(target_entropy),
            ),
            step=jnp.zeros((), jnp.int32),
        )

    def normalize(stats: obs_normalizer.RunningMeanStd, obs: jax.Array) -> jax.Array:
        if config.normalize_observations:
            return obs_normalizer.normalize(stats, obs)
        return obs

    def check_batch(batch: Transition) -> None:
        # Trace-time shape checks: a clear error instead of a broadcast deep inside the losses.
        if not isinstance(batch, Transition):
            raise ValueError(f"SAC update: batch must be a Transition, got {type(batch).__name__}")
        b = batch.reward.shape
        expected = {
            "obs": b + (obs_size,),
            "action": b + (action_size,),
            "next_obs": b + (obs_size,),
            "terminated": b,
        }
        if len(b) != 1:
            raise ValueError(f"SAC update: batch.reward must be [B], got shape {b}")
        for name, shape in expected.items():
            got = getattr(batch, name).shape
            if got != shape:
                raise ValueError(f"SAC update: batch.{name} must have shape {shape}, got {got}")

    def update(
        state: SACState, batch: Transition, key: jax.Array
    ) -> tuple[SACState, dict[str, jax.Array]]:
        """One gradient step on critics, actor and temperature. batch leaves: [B, ...].

        All three gradients are taken at the current parameters (as in the original SAC), then
        the target critics move by Polyak averaging with rate tau.
        """
        check_batch(batch)
        k_critic, k_actor = jax.random.split(key)
        hp = state.hparams
        batch = batch.replace(
            obs=normalize(state.obs_norm, batch.obs.astype(jnp.float32)),
            next_obs=normalize(state.obs_norm, batch.next_obs.astype(jnp.float32)),
            action=batch.action.astype(jnp.float32),
            reward=batch.reward.astype(jnp.float32),
            terminated=batch.terminated.astype(jnp.float32),
        )
        alpha = jnp.exp(state.log_alpha)

        (c_loss, c_aux), c_grads = jax.value_and_grad(losses.critic_loss, has_aux=True)(
            state.critic_params,
            state.target_critic_params,
            state.policy_params,
            nets,
            batch,
            alpha,
            hp.discount,
            hp.reward_scale,
            k_critic,
        )
        (a_loss, log_prob), p_grads = jax.value_and_grad(losses.actor_loss, has_aux=True)(
            state.policy_params, state.critic_params, nets, batch.obs, alpha, k_actor
        )
        t_loss, t_grad = jax.value_and_grad(losses.alpha_loss)(
            state.log_alpha, log_prob, hp.target_entropy
        )

        c_updates, critic_opt_state = critic_opt.update(c_grads, state.critic_opt_state)
        critic_params = optax.apply_updates(state.critic_params, c_updates)
        p_updates, policy_opt_state = policy_opt.update(p_grads, state.policy_opt_state)
        policy_params = optax.apply_updates(state.policy_params, p_updates)
        t_updates, alpha_opt_state = alpha_opt.update(t_grad, state.alpha_opt_state)
        log_alpha = optax.apply_updates(state.log_alpha, t_updates)
        target_critic_params = jax.tree_util.tree_map(
            lambda t, p: (1.0 - hp.tau) * t + hp.tau * p, state.target_critic_params, critic_params
        )

        new_state = state.replace(
            policy_params=policy_params,
            critic_params=critic_params,
            target_critic_params=target_critic_params,
            policy_opt_state=policy_opt_state,
            critic_opt_state=critic_opt_state,
            alpha_opt_state=alpha_opt_state,
            log_alpha=log_alpha,
            step=state.step + 1,
        )
        metrics = {
            "critic_loss": c_loss,
            "actor_loss": a_loss,
            "alpha_loss": t_loss,
            "alpha": alpha,
            "entropy": -jnp.mean(log_prob),
            **c_aux,
        }
        return new_state, metrics

    def update_many(
        state: SACState,
        sample_fn: Callable[[jax.Array], Transition],
        key: jax.Array,
        num_updates: int,
    ) -> tuple[SACState, dict[str, jax.Array]]:
        """`num_updates` (static int) updates in one lax.scan; batch_k = sample_fn(key_k).

        Returns the final state and the metrics averaged over the updates.
        """
        validation.check_int("update_many: num_updates", num_updates)

        def body(s: SACState, k: jax.Array):
            k_sample, k_update = jax.random.split(k)
            return update(s, sample_fn(k_sample), k_update)

        state, metrics = jax.lax.scan(body, state, jax.random.split(key, num_updates))
        return state, jax.tree_util.tree_map(lambda m: jnp.mean(m, axis=0), metrics)

    def act(
        params: ActorParams, obs: jax.Array, key: jax.Array, deterministic: bool = False
    ) -> jax.Array:
        """obs: [..., obs_size] -> action [..., A] in (-1, 1). `deterministic` must be static."""
        if obs.shape[-1:] != (obs_size,):
            raise ValueError(f"SAC act: obs must be [..., {obs_size}], got shape {obs.shape}")
        mean, log_std = policy_net.apply(params.policy, normalize(params.obs_norm, obs))
        if deterministic:
            return distribution.mode(mean)
        action, _ = distribution.sample_and_log_prob(mean, log_std, key)
        return action

    def observe(state: SACState, obs: jax.Array) -> SACState:
        """Adds real observations obs: [N, obs_size] to the running statistics (no-op when
        `normalize_observations` is off)."""
        if not config.normalize_observations:
            return state
        return state.replace(obs_norm=obs_normalizer.update(state.obs_norm, obs))

    return SAC(
        init=init,
        update=update,
        act=act,
        update_many=update_many,
        observe=observe,
        networks=nets,
        config=config,
        obs_size=obs_size,
        action_size=action_size,
    )
