"""The pathwise objective: an imagined return differentiated through the model and the policy.

For starts s_0 ~ D (real states from replay), a reparameterised policy a_t = pi_theta(s_t, eps_t)
and model steps s_{t+1} = f(s_t, a_t, xi_t) (`mbjax.rollout.imagine`):

    J(theta) = E[ sum_{t<H} gamma^t w_t (r_t - alpha log pi(a_t|s_t)) + gamma^H w_H V(s_H) ]

w_t: the probability that the rollout is alive when step t starts (`Imagined.weights`), w_H =
w_{H-1} (1 - d_{H-1}). V is 0 for BPTT / SVG(inf) (Heess et al. 2015, "Learning Continuous
Control Policies by Stochastic Value Gradients", eq. 5-6 with H = the episode), a learned value
for SVG(1) (H = 1, their eq. 7), and the soft Q of the policy's action, min_c Q_c(s_H, a_H) -
alpha log pi(a_H|s_H), for MAAC (Clavera et al. 2020, "Model-Augmented Actor-Critic:
Backpropagating through Paths", eq. 4). `jax.grad` of `imagined_objective` is the pathwise
gradient (tested against finite differences in float64, tests/test_bptt.py).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from mbjax.rollout import Imagined, imagine
from mbjax.rollout.imagine import Policy
from mbjax.rollout.transition import RewardFn, TerminationFn

# terminal_value(obs_H [N, S], key) -> [N];  log_prob(obs [H, N, S], actions [H, N, A]) -> [H, N]
TerminalValue = Callable[[jax.Array, jax.Array], jax.Array]
LogProb = Callable[[jax.Array, jax.Array], jax.Array]


class PathwiseTerms(NamedTuple):
    """Per-row parts of J [N]: objective = model_return + entropy + terminal."""

    objective: jax.Array
    model_return: jax.Array
    entropy: jax.Array
    terminal: jax.Array


def pathwise_return(
    imagined: Imagined,
    discount: Any,
    *,
    terminal_value: jax.Array | None = None,
    log_probs: jax.Array | None = None,
    alpha: Any = 0.0,
) -> PathwiseTerms:
    """J per row (module docstring) from an imagined batch [H, N].

    terminal_value: V(s_H) [N] (None: 0); log_probs: log pi(a_t|s_t) [H, N] (None: no entropy
    term); discount / alpha: scalars (float leaves ok). Dead rows contribute 0 even when the
    model produced NaN past a termination (`where`, not a product, as `transition.accumulate`).
    """
    horizon = imagined.rewards.shape[0]
    scale = jnp.asarray(discount, imagined.rewards.dtype) ** jnp.arange(horizon)[:, None]  # [H, 1]
    weights = scale * imagined.weights
    alive = imagined.weights > 0

    def weighted_sum(x: jax.Array) -> jax.Array:
        return jnp.sum(jnp.where(alive, weights * x, 0.0), axis=0)

    model_return = weighted_sum(imagined.rewards)
    entropy = (jnp.zeros_like(model_return) if log_probs is None
               else -alpha * weighted_sum(log_probs))
    terminal = jnp.zeros_like(model_return)
    if terminal_value is not None:
        survival = imagined.weights[-1] * (1.0 - imagined.dones[-1])
        end_scale = jnp.asarray(discount, imagined.rewards.dtype) ** horizon
        terminal = jnp.where(survival > 0, end_scale * survival * terminal_value, 0.0)
    return PathwiseTerms(model_return + entropy + terminal, model_return, entropy, terminal)


def imagined_objective(
    model: Any,
    model_state: Any,
    policy: Policy,
    policy_params: Any,
    starts: jax.Array,
    horizon: int,
    key: jax.Array,
    discount: Any,
    *,
    reward_fn: RewardFn | None = None,
    termination_fn: TerminationFn | None = None,
    terminal_value: TerminalValue | None = None,
    log_prob: LogProb | None = None,
    alpha: Any = 0.0,
    reward_scale: Any = 1.0,
    sample_noise: bool = True,
) -> tuple[jax.Array, tuple[PathwiseTerms, Imagined]]:
    """The mean of J over starts [N, S]; -> (scalar, (PathwiseTerms [N], Imagined [H, N])).

    `imagine` with soft terminations (differentiable), each row through a uniformly drawn elite
    per step; `policy(params, obs [N, S], key) -> action [N, A]` must be reparameterised (its
    noise a function of the key only) for the gradient to be the pathwise one. reward_scale
    multiplies the imagined rewards (SAC's, so that they are in the critics' units).
    """
    k_imagine, k_terminal = jax.random.split(key)
    im = imagine(
        model, model_state, policy, policy_params, starts, horizon, k_imagine,
        reward_fn=reward_fn, termination_fn=termination_fn, termination="soft",
        elites_only=True, sample_noise=sample_noise,
    )
    im = im._replace(rewards=reward_scale * im.rewards)
    value = None if terminal_value is None else terminal_value(im.obs[-1], k_terminal)
    log_probs = None if log_prob is None else log_prob(im.obs[:-1], im.actions)
    terms = pathwise_return(im, discount, terminal_value=value, log_probs=log_probs, alpha=alpha)
    return jnp.mean(terms.objective), (terms, im)


def clip_gradients(grads: Any, max_norm: Any) -> tuple[Any, jax.Array]:
    """grads rescaled to global norm <= max_norm (`optax.clip_by_global_norm`, stateless) and
    the norm before clipping. max_norm may be a traced float leaf."""
    norm = optax.tree.norm(grads)
    clipped, _ = optax.clip_by_global_norm(max_norm).update(grads, optax.EmptyState())
    return clipped, norm
