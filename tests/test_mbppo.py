"""MB-PPO: GAE against a numpy reference, the PPO step's direction, per-network gradient
clipping, ME-TRPO's stopping rule with patience, the true-dynamics model return against the real
return, and an exact resume."""

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
    mean = ppo.policy_mean(nets, params, obs)
    reward = jnp.sign(raw - mean)[..., 0]
    batch = ppo.Batch(obs, raw, logp, reward, jnp.ones_like(reward), jnp.ones_like(reward),
                      obs[0])
    optimizer = ppo.make_optimizer(config)
    new, _, _ = ppo.ppo_update(nets, config, optimizer, params, optimizer.init(params), batch,
                               jax.random.key(3))
    shift = ppo.policy_mean(nets, new, obs) - mean
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


def test_the_critics_gradient_does_not_shrink_the_actors_step():
    config = PPOConfig(hidden_sizes=(8,), max_grad_norm=0.5)
    nets = ppo.make_nets(config, 1)
    params = ppo.init_params(nets, config, 3, 1, jax.random.key(0))
    grads = jax.tree_util.tree_map(jnp.ones_like, params)
    huge_critic = {**grads, "critic": jax.tree_util.tree_map(lambda g: 1e6 * g, grads["critic"])}
    optimizer = ppo.make_optimizer(config)
    state = optimizer.init(params)
    small, _ = optimizer.update(grads, state, params)
    large, _ = optimizer.update(huge_critic, state, params)
    for name in ("actor", "log_std"):
        for a, b in zip(jax.tree_util.tree_leaves(small[name]),
                        jax.tree_util.tree_leaves(large[name]), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-6)


def test_true_dynamics_imagine_the_real_return_and_patience_delays_the_stop():
    # With the task's own physics as the "model", the evaluated policy's imagined episode from
    # the evaluation's start states is the real episode: equal returns.
    # Strict validation (the one "elite" must improve) with patience 3: at least 3 iterations,
    # and a stop before the cap only after a failed check.
    config = dataclasses.replace(mbppo.preset("cartpole_swingup", "test"), dynamics="true",
                                 improvement_ratio=1.0, validation_patience=3,
                                 policy_iterations=6)
    _, _, records = mbppo.train("cartpole_swingup", config, seed=1)
    for r in records[1:]:
        np.testing.assert_allclose(r["model_return"], r["episode_return"], rtol=1e-4, atol=1e-3)
        assert r["policy_iterations"] >= 3
        # keep_passed_policy: the policy kept is the incoming one or one that scored above it.
        assert r["imagined_gain"] >= 0.0
        if r["policy_iterations"] < 6:
            assert r["improvement_fraction"] < 1.0
