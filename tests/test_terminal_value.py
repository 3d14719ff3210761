"""MPC with a learned terminal value: `propagate`'s terminal_value term against the returned
trajectories, and PETS with `terminal_value=True` (critic trained, policy, exact resume)."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mbjax.agents import pets
from mbjax.models import EnsembleConfig, make_ensemble
from mbjax.rollout import PropagationConfig, propagate

S, A = 3, 2


def _value(x):
    return jnp.sin(x[..., 0]) + x[..., 1] ** 2


@pytest.mark.parametrize("mode", ["tsinf", "expectation"])
def test_terminal_value_adds_discounted_value_of_the_final_states(mode):
    model = make_ensemble(EnsembleConfig(ensemble_size=2, hidden_sizes=(8,)), S, A)
    state = model.init(jax.random.key(0))
    config = PropagationConfig(mode=mode, num_particles=4 if mode == "tsinf" else 1,
                               discount=0.9)
    obs = jnp.array([0.1, -0.2, 0.3])
    actions = jax.random.uniform(jax.random.key(1), (5, 6, A), minval=-1, maxval=1)
    reward = lambda o, a, n: -jnp.sum(n**2)
    key = jax.random.key(2)
    plain = propagate(model, config, state, obs, actions, key, reward, return_trajectories=True)
    tail = propagate(model, config, state, obs, actions, key, reward, terminal_value=_value)
    final = plain.trajectories[:, :, -1]  # [N, P, S]
    expected = plain.particle_returns + 0.9**6 * _value(final)
    np.testing.assert_allclose(tail.particle_returns, expected, rtol=1e-5, atol=1e-5)

    # A terminated particle gets no value: a termination at the first step removes the tail.
    always = lambda o, a, n: jnp.ones((), bool)
    ended = propagate(model, config, state, obs, actions, key, reward, always,
                      terminal_value=_value)
    ended_plain = propagate(model, config, state, obs, actions, key, reward, always)
    np.testing.assert_allclose(ended.values, ended_plain.values, rtol=1e-6)


def _config():
    return dataclasses.replace(pets.preset("point_mass", "test"), terminal_value=True)


def test_pets_trains_the_critic_plans_with_it_and_resumes_exactly(tmp_path):
    from resume_check import assert_resume_matches

    config = _config()
    make_policy, final, records = pets.train("point_mass", config, seed=0)
    assert records[0].get("value_loss") is None  # the seed episode trains nothing
    assert all(np.isfinite(r["value_loss"]) for r in records[1:])
    assert int(final.critic.step) == config.value.updates_per_episode * (len(records) - 1)

    # The policy plans with the final critic: a different critic changes the plan.
    init_carry, policy = make_policy(final)
    obs = jnp.array([0.1, 0.0, 0.0, 0.0])[: pets.make_pets(config).env.observation_size]
    carry = init_carry(jax.random.key(0))
    _, action, info = jax.jit(policy)(carry, obs, jax.random.key(1))
    assert action.shape == (pets.make_pets(config).env.action_size,)
    scaled = final.replace(critic=final.critic.replace(
        critic_params=jax.tree_util.tree_map(lambda p: 100.0 * p, final.critic.critic_params)))
    _, other, info2 = jax.jit(make_policy(scaled)[1])(carry, obs, jax.random.key(1))
    assert float(info["best_return"]) != float(info2["best_return"])

    assert_resume_matches(pets.train, records, str(tmp_path / "ck"), 2, env="point_mass",
                          config=config, seed=0)


def test_terminal_value_needs_a_sampling_planner():
    with pytest.raises(ValueError, match="terminal_value=True is invalid"):
        dataclasses.replace(pets.with_planner(pets.preset("point_mass", "test"), "ilqr"),
                            terminal_value=True)


@pytest.mark.parametrize("soft, init_scale, stays_zero", [
    (False, 0.0, True),   # the default: zero-initialised Q heads, targets without entropy
    (True, 0.0, False),   # soft targets: the entropy bonus alone makes values up
    (False, 1.0, False),  # a random init: the untrained output is a made-up value
])
def test_a_value_that_has_seen_no_reward_is_exactly_zero(soft, init_scale, stays_zero):
    from mbjax import replay
    from mbjax.agents.pets.value import make_critic, train_critic
    from mbjax.types import Transition

    base = _config()
    value = dataclasses.replace(
        base.value, soft_targets=soft, expansion_horizon=0,
        sac=dataclasses.replace(base.value.sac, critic_init_scale=init_scale))
    config = dataclasses.replace(base, value=value)
    critic = make_critic(config, S, A)
    n = 256
    obs = jax.random.normal(jax.random.key(3), (n + 1, S))
    data = Transition(obs=obs[:-1], action=jax.random.uniform(jax.random.key(4), (n, A), minval=-1),
                      reward=jnp.zeros(n), next_obs=obs[1:], terminated=jnp.zeros(n),
                      truncated=jnp.zeros(n))
    buffer = replay.add(replay.init(n, jax.tree.map(lambda x: x[0], data)), data)
    state = critic.init(jax.random.key(5))
    train = jax.jit(lambda s, b, k: train_critic(critic, None, value, None, None, s, b, None, k))
    state, _ = train(state, buffer, jax.random.key(6))
    v = critic.value(state, jax.random.normal(jax.random.key(7), (64, S)))
    assert bool(jnp.all(v == 0)) == stays_zero, np.asarray(v)[:4]


def test_policy_prior_replaces_the_plan_only_when_it_scores_higher():
    """`with_policy_prior`: the actor's sequences (row 0 its deterministic action) compete with
    the planner's result under the same objective; the winner becomes the plan and the warm
    start. Wired into PETS's plan with `value.policy_prior`."""
    from mbjax.agents.pets.prior import PolicyPrior, policy_sequences, with_policy_prior

    config = dataclasses.replace(_config(), value=dataclasses.replace(_config().value,
                                                                      policy_prior=3))
    bundle = pets.make_pets(config)
    state = bundle.init(jax.random.key(0))
    obs = jnp.full((bundle.env.observation_size,), 0.3)
    prior = PolicyPrior(bundle.critic, bundle.model, config.horizon, 3, *_task(config),
                        config.propagation.elites_only)
    seqs = policy_sequences(prior, state.model, state.critic, obs, jax.random.key(1))
    assert seqs.shape == (3, config.horizon, bundle.env.action_size)
    assert bool(jnp.all(jnp.abs(seqs) <= 1.0))
    first = bundle.critic.act(state.critic.actor_params, obs, jax.random.key(2),
                              deterministic=True)
    np.testing.assert_allclose(seqs[0, 0], first, rtol=1e-5, atol=1e-6)

    planner_state = bundle.planner.init(bundle.env.action_size, jax.random.key(3))
    planned = jnp.zeros((config.horizon, bundle.env.action_size))
    # An objective that prefers the prior's sequences (the same key draws the same sequences).
    near = lambda cands: -jnp.sum((cands - seqs[1]) ** 2, axis=(-2, -1))
    for best_return, used in ((-1.0, True), (1.0, False)):
        actions, new_state, info = with_policy_prior(
            prior, near, state.model, state.critic, obs, jax.random.key(1), planned,
            planner_state, {"best_return": jnp.asarray(best_return)})
        assert bool(info["prior_used"]) == used
        expected = seqs[1] if used else planned
        np.testing.assert_allclose(actions, expected, atol=1e-6)
        np.testing.assert_allclose(new_state.mean, expected if used else planner_state.mean,
                                   atol=1e-6)
        assert float(info["best_return"]) == max(best_return, float(info["prior_return"]))

    actions, _, info = jax.jit(bundle.plan)(state.model, planner_state, obs, jax.random.key(4),
                                            state.critic)
    assert "prior_used" in info and actions.shape == planned.shape


def _task(config):
    from mbjax import envs

    return envs.resolve_task(config.env, config.learned_reward, config.learned_termination,
                             config.use_estimated_reward)
