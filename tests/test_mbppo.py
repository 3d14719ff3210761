"""MB-PPO: GAE against a numpy reference, the PPO step's direction, ME-TRPO's stopping rule,
and an exact resume."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from mbjax.agents import mbppo
from mbjax.agents.mbppo import ppo
from mbjax.agents.mbppo.config import PPOConfig


def test_gae_equals_numpy():
    rng = np.random.default_rng(0)
    t, n, gamma, lam = 7, 5, 0.9, 0.8
    rewards = rng.normal(size=(t, n)).astype(np.float32)
    values = rng.normal(size=(t, n)).astype(np.float32)
    last = rng.normal(size=n).astype(np.float32)
    dones = (rng.random((t, n)) < 0.2).astype(np.float32)
    alive = np.cumprod(np.concatenate([np.ones((1, n)), 1 - dones[:-1]]), axis=0)
    adv, ret = mbppo.gae(rewards, values, last, dones, alive, gamma, lam)
    expected = np.zeros((t, n))
    for j in range(n):
        a = 0.0
        for i in reversed(range(t)):
            nxt = last[j] if i == t - 1 else values[i + 1, j]
            delta = rewards[i, j] + gamma * (1 - dones[i, j]) * nxt - values[i, j]
            a = delta + gamma * lam * (1 - dones[i, j]) * a
            expected[i, j] = a * (alive[i, j] > 0)
    np.testing.assert_allclose(adv, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ret, expected + values, rtol=1e-5, atol=1e-5)


def test_a_ppo_step_makes_advantageous_actions_likelier():
    config = PPOConfig(hidden_sizes=(16,), epochs=4, minibatches=1, learning_rate=1e-2,
                       entropy_coef=0.0)
    nets = ppo.make_nets(config, 1)
    params = ppo.init_params(nets, config, 2, 1, jax.random.key(0))
    obs = jax.random.normal(jax.random.key(1), (1, 64, 2))
    raw, logp = ppo.sample(nets, params, obs, jax.random.key(2))
    # Reward: +1 for actions above the policy mean, -1 below: the mean must move up.
    mean = nets.actor.apply(params["actor"], obs)
    reward = jnp.sign(raw - mean)[..., 0]
    batch = ppo.Batch(obs, raw, logp, reward, jnp.ones_like(reward), jnp.ones_like(reward),
                      obs[0])
    optimizer = ppo.make_optimizer(config)
    new, _, _ = ppo.ppo_update(nets, config, optimizer, params, optimizer.init(params), batch,
                               jax.random.key(3))
    shift = nets.actor.apply(new["actor"], obs) - mean
    assert float(jnp.mean(shift)) > 0.0


def test_validation_rule_bounds_the_policy_iterations_and_resume_is_exact(tmp_path):
    from resume_check import assert_resume_matches

    base = mbppo.preset("cartpole_swingup", "test")
    never_stop = dataclasses.replace(base, improvement_ratio=0.0)
    _, _, records = mbppo.train("cartpole_swingup", never_stop, seed=0)
    assert [r["policy_iterations"] for r in records[1:]] == [base.policy_iterations] * 2
    assert all(r["improvement_fraction"] is not None for r in records[1:])
    # With ratio 1 an iteration continues only if every elite saw an improvement.
    strict = dataclasses.replace(base, improvement_ratio=1.0)
    _, _, strict_records = mbppo.train("cartpole_swingup", strict, seed=0)
    for r in strict_records[1:]:
        if r["policy_iterations"] < base.policy_iterations:
            assert r["improvement_fraction"] < 1.0
    assert_resume_matches(mbppo.train, records, str(tmp_path / "ck"), 2,
                          env="cartpole_swingup", config=never_stop, seed=0)
