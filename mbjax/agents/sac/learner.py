"""The SAC learner as a function bundle: `sac = make_sac(config, obs_size, action_size)`.

    state = sac.init(key)
    state, metrics = sac.update(state, batch, key)            # one gradient step, batch: [B, ...]
    state, metrics = sac.update_many(state, sample_fn, key, n) # n steps in one lax.scan
    action = sac.act(state.actor_params, obs, key, deterministic=False)

All functions are pure and jittable; `update` has no Python control flow on traced values, so it
runs inside `lax.scan` / `vmap`. MBPO composes `update_many` with a `sample_fn` that mixes model
rollouts and real data. The state pytrees live in `state.py`, the gradient step in `update.py`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from mbjax import optim, validation
from mbjax.agents.sac import distribution, losses
from mbjax.agents.sac import normalizer as obs_normalizer
from mbjax.agents.sac import update as sac_update
from mbjax.agents.sac.config import SACConfig
from mbjax.agents.sac.networks import CriticNetwork, PolicyNetwork
from mbjax.agents.sac.state import ActorParams, Params, SACHyperparams, SACState
from mbjax.agents.sac.update import LearnerParts, TargetsFn, maybe_normalize, one_step_targets
from mbjax.types import Transition

__all__ = [
    "SAC",
    "ActorParams",
    "LearnerParts",
    "Params",
    "SACHyperparams",
    "SACState",
    "act_with",
    "init_state",
    "make_sac",
    "observe_with",
    "value_with",
]


class SAC(NamedTuple):
    """Function bundle returned by `make_sac`."""

    init: Callable[[jax.Array], SACState]
    update: Callable[..., tuple[SACState, dict[str, jax.Array]]]
    act: Callable[..., jax.Array]
    update_many: Callable[..., tuple[SACState, dict[str, jax.Array]]]
    observe: Callable[[SACState, jax.Array], SACState]
    value: Callable[[SACState, jax.Array], jax.Array]
    networks: losses.SACNetworks
    parts: LearnerParts
    config: SACConfig
    obs_size: int
    action_size: int


def _f32(x: float) -> jax.Array:
    # Strongly typed float32, so a state from `init` and one from `update` trace alike.
    return jnp.asarray(x, dtype=jnp.float32)


def init_state(config: SACConfig, parts: LearnerParts, policy_net: PolicyNetwork,
               critic_net: CriticNetwork, key: jax.Array) -> SACState:
    """A fresh learner state: new network weights (from `key`), optimizer states, log_alpha at
    log(init_alpha), empty observation statistics and the hyperparameters as float32 leaves."""
    obs_size, action_size = parts.obs_size, parts.action_size
    target_entropy = (
        -float(action_size) if config.target_entropy is None else float(config.target_entropy)
    )
    k_policy, k_critic = jax.random.split(key)
    dummy_obs = jnp.zeros((1, obs_size), jnp.float32)
    dummy_act = jnp.zeros((1, action_size), jnp.float32)
    policy_params = policy_net.init(k_policy, dummy_obs)
    critic_params = critic_net.init(k_critic, dummy_obs, dummy_act)
    log_alpha = _f32(math.log(config.init_alpha))
    return SACState(
        policy_params=policy_params,
        critic_params=critic_params,
        target_critic_params=critic_params,
        policy_opt_state=parts.policy_opt.init(policy_params),
        critic_opt_state=parts.critic_opt.init(critic_params),
        alpha_opt_state=parts.alpha_opt.init(log_alpha),
        log_alpha=log_alpha,
        obs_norm=obs_normalizer.init(obs_size),
        hparams=SACHyperparams(
            discount=_f32(config.discount),
            tau=_f32(config.tau),
            reward_scale=_f32(config.reward_scale),
            target_entropy=_f32(target_entropy),
        ),
        step=jnp.zeros((), jnp.int32),
    )


def act_with(
    parts: LearnerParts,
    params: ActorParams,
    obs: jax.Array,
    key: jax.Array,
    deterministic: bool = False,
) -> jax.Array:
    """obs: [..., obs_size] -> action [..., A] in (-1, 1). `deterministic` must be static."""
    if obs.shape[-1:] != (parts.obs_size,):
        raise ValueError(f"SAC act: obs must be [..., {parts.obs_size}], got shape {obs.shape}")
    mean, log_std = parts.nets.policy_apply(
        params.policy, maybe_normalize(parts, params.obs_norm, obs)
    )
    if deterministic:
        return distribution.mode(mean)
    action, _ = distribution.sample_and_log_prob(mean, log_std, key)
    return action


def value_with(parts: LearnerParts, state: SACState, obs: jax.Array) -> jax.Array:
    """The deterministic policy's value min_c Q_c(s, tanh(mean(s))): obs [..., S] -> [...]
    (the terminal value of MPC with a learned value, `mbjax.agents.pets`)."""
    lead = obs.shape[:-1]
    x = maybe_normalize(parts, state.obs_norm, obs.reshape(-1, obs.shape[-1]))
    mean, _ = parts.nets.policy_apply(state.policy_params, x)
    q = parts.nets.critic_apply(state.critic_params, x, distribution.mode(mean))
    return jnp.min(q, axis=0).reshape(lead)


def observe_with(parts: LearnerParts, state: SACState, obs: jax.Array) -> SACState:
    """Adds real observations obs: [N, obs_size] to the running statistics (no-op when
    `normalize_observations` is off)."""
    if not parts.normalize_observations:
        return state
    return state.replace(obs_norm=obs_normalizer.update(state.obs_norm, obs))


def with_learning_rates(
    state: SACState, actor: Any = None, critic: Any = None, alpha: Any = None
) -> SACState:
    """`state` with the given Adam learning rates replaced (float32 leaves of the optimizer
    states: no retrace, and a batch of them vmaps as a grid); None keeps a rate."""
    changes = {}
    for field, rate in (("policy_opt_state", actor), ("critic_opt_state", critic),
                        ("alpha_opt_state", alpha)):
        if rate is not None:
            changes[field] = optim.set_hyperparams(getattr(state, field), learning_rate=rate)
    return state.replace(**changes)


def make_sac(config: SACConfig, obs_size: int, action_size: int) -> SAC:
    """Builds the SAC function bundle for flat observations [obs_size] and actions in [-1, 1]^A."""
    if not isinstance(config, SACConfig):
        raise validation.invalid("make_sac: config", type(config).__name__, "a SACConfig")
    validation.check_int("make_sac: obs_size", obs_size)
    validation.check_int("make_sac: action_size", action_size)

    policy_net = PolicyNetwork(
        config.hidden_sizes, action_size, config.log_std_min, config.log_std_max
    )
    critic_net = CriticNetwork(config.hidden_sizes, config.num_critics, config.critic_init_scale)
    parts = LearnerParts(
        nets=losses.SACNetworks(policy_apply=policy_net.apply, critic_apply=critic_net.apply),
        policy_opt=optax.inject_hyperparams(optax.adam)(learning_rate=config.actor_lr),
        critic_opt=optax.inject_hyperparams(optax.adam)(learning_rate=config.critic_lr),
        alpha_opt=optax.inject_hyperparams(optax.adam)(learning_rate=config.alpha_lr),
        obs_size=obs_size,
        action_size=action_size,
        normalize_observations=config.normalize_observations,
    )

    # Plain functions rather than functools.partial: tools such as chex.assert_max_traces and
    # inspect need a function object with the bundle's own signature.
    def init(key: jax.Array) -> SACState:
        """A fresh learner state (see `init_state`)."""
        return init_state(config, parts, policy_net, critic_net, key)

    def update(state: SACState, batch: Transition, key: jax.Array,
               targets_fn: TargetsFn = one_step_targets) -> tuple[SACState, dict[str, jax.Array]]:
        """One gradient step, batch leaves [B, ...] (see `update.update`); targets_fn: the
        critics' targets (SAC's one-step ones, or `expansion`'s MVE / STEVE)."""
        return sac_update.update(parts, state, batch, key, targets_fn)

    def update_many(
        state: SACState, sample_fn: Callable[[jax.Array], Transition], key: jax.Array,
        num_updates: int, targets_fn: TargetsFn = one_step_targets,
    ) -> tuple[SACState, dict[str, jax.Array]]:
        """`num_updates` (static) steps in one lax.scan (see `update.update_many`)."""
        step = lambda s, b, k: update(s, b, k, targets_fn)
        return sac_update.update_many(step, state, sample_fn, key, num_updates)

    def act(params: ActorParams, obs: jax.Array, key: jax.Array,
            deterministic: bool = False) -> jax.Array:
        """obs [..., obs_size] -> action [..., A] (see `act_with`)."""
        return act_with(parts, params, obs, key, deterministic)

    def observe(state: SACState, obs: jax.Array) -> SACState:
        """Adds obs [N, obs_size] to the running statistics (see `observe_with`)."""
        return observe_with(parts, state, obs)

    def value(state: SACState, obs: jax.Array) -> jax.Array:
        """min_c Q_c(obs, the deterministic action): obs [..., S] -> [...] (see `value_with`)."""
        return value_with(parts, state, obs)

    return SAC(
        init=init,
        update=update,
        act=act,
        update_many=update_many,
        observe=observe,
        value=value,
        networks=parts.nets,
        parts=parts,
        config=config,
        obs_size=obs_size,
        action_size=action_size,
    )
