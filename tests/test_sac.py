"""Tests for the SAC learner (mbjax.agents.sac): distribution, losses, update, training loop."""

from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import norm

from mbjax.agents.sac import SACConfig, losses, make_sac, make_train_sac
from mbjax.agents.sac import distribution as tanh_gaussian
from mbjax.agents.sac import normalizer as obs_normalizer
from mbjax.types import Transition

SMALL = dict(hidden_sizes=(32, 32), batch_size=32)


class PointMass:
    """1-D point mass for tests: obs (x, v), force in [-1, 1], reward exp(-2 x^2).

    Starts uniform in [-1, 1]^2; terminates when |x| > 2 (so the loop sees real terminations
    as well as time-limit truncations from Brax's EpisodeWrapper).
    """

    observation_size = 2
    action_size = 1
    dt = 0.1

    def reset(self, key):
        from brax.envs.base import State

        obs = jax.random.uniform(key, (2,), minval=-1.0, maxval=1.0)
        zero = jnp.zeros(())
        return State(pipeline_state=None, obs=obs, reward=zero, done=zero, metrics={}, info={})

    def step(self, state, action):
        x, v = state.obs
        v = v + self.dt * 2.0 * jnp.clip(action[0], -1.0, 1.0)
        x = x + self.dt * v
        return state.replace(
            obs=jnp.stack([x, v]),
            reward=jnp.exp(-2.0 * x**2),
            done=(jnp.abs(x) > 2.0).astype(jnp.float32),
        )


def point_mass(episode_length: int = 50):
    from brax.envs.wrappers.training import EpisodeWrapper

    return EpisodeWrapper(PointMass(), episode_length=episode_length, action_repeat=1)


def random_batch(key, batch_size, obs_size, action_size, terminated=0.0):
    k1, k2, k3, k4 = jax.random.split(key, 4)
    return Transition(
        obs=jax.random.normal(k1, (batch_size, obs_size)),
        action=jax.random.uniform(k2, (batch_size, action_size), minval=-1.0, maxval=1.0),
        reward=jax.random.normal(k3, (batch_size,)),
        next_obs=jax.random.normal(k4, (batch_size, obs_size)),
        terminated=jnp.full((batch_size,), terminated, jnp.float32),
    )


# ----------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    "field, value",
    [
        ("hidden_sizes", ()),
        ("hidden_sizes", (256, 0)),
        ("hidden_sizes", 256),
        ("num_critics", 0),
        ("actor_lr", 0.0),
        ("critic_lr", -1e-3),
        ("alpha_lr", float("nan")),
        ("discount", 1.5),
        ("tau", 0.0),
        ("tau", 1.1),
        ("init_alpha", 0.0),
        ("target_entropy", float("inf")),
        ("batch_size", 0),
        ("reward_scale", 0.0),
        ("log_std_min", 3.0),
        ("normalize_observations", 1),
    ],
)
def test_bad_config_raises_value_error_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        SACConfig(**{field: value})


def test_good_config_and_bad_sizes():
    cfg = SACConfig(hidden_sizes=[64, 64], target_entropy=-2.0)
    assert cfg.hidden_sizes == (64, 64)
    with pytest.raises(ValueError, match="obs_size"):
        make_sac(cfg, 0, 1)
    with pytest.raises(ValueError, match="action_size"):
        make_sac(cfg, 3, 1.5)
    with pytest.raises(ValueError, match="num_env_steps"):
        make_train_sac(point_mass(), cfg, 1001, num_envs=2, num_evals=10)
    with pytest.raises(ValueError, match="updates_per_step"):
        make_train_sac(point_mass(), cfg, 1000, updates_per_step=0)


def test_update_rejects_mis_shaped_batch():
    sac = make_sac(SACConfig(**SMALL), 3, 2)
    state = sac.init(jax.random.key(0))
    batch = random_batch(jax.random.key(1), 8, 3, 1)  # action size 1, expected 2
    with pytest.raises(ValueError, match="batch.action"):
        sac.update(state, batch, jax.random.key(2))


# ----------------------------------------------------------------------------- distribution


def test_tanh_gaussian_log_prob_matches_numerical_change_of_variables():
    """Density of a = tanh(u), u ~ N(mu, s^2), from a finite difference of its exact CDF
    P(a' <= a) = Phi((arctanh(a) - mu) / s); independent of the Jacobian formula under test."""
    mu, log_std = 0.3, math.log(0.8)
    a = np.linspace(-0.995, 0.995, 201)  # float64 for the finite difference
    h = 1e-4

    def cdf(x):
        return norm.cdf((np.arctanh(x) - mu) / math.exp(log_std))

    numeric = np.log((cdf(a + h) - cdf(a - h)) / (2 * h))
    ours = tanh_gaussian.log_prob(
        jnp.full((201, 1), mu), jnp.full((201, 1), log_std), jnp.asarray(a, jnp.float32)[:, None]
    )
    np.testing.assert_allclose(ours, numeric, atol=2e-3)

    # The density integrates to one over (-1, 1).
    grid = np.linspace(-1 + 1e-7, 1 - 1e-7, 400_001)
    dens = np.exp(
        tanh_gaussian.log_prob(
            jnp.full((grid.size, 1), mu),
            jnp.full((grid.size, 1), log_std),
            jnp.asarray(grid, jnp.float32)[:, None],
        )
    )
    assert abs(np.trapezoid(np.asarray(dens, np.float64), grid) - 1.0) < 2e-3


def test_sampled_log_prob_is_the_sum_over_dimensions_and_stable_far_in_the_tails():
    key = jax.random.key(0)
    mean = jnp.array([[0.5, -1.0, 2.0]] * 1000)
    log_std = jnp.array([[-0.5, 0.0, -1.0]] * 1000)
    action, logp = tanh_gaussian.sample_and_log_prob(mean, log_std, key)
    assert action.shape == (1000, 3) and logp.shape == (1000,)
    assert bool(jnp.all(jnp.abs(action) < 1.0))
    # Re-evaluating at the sampled actions (arctanh inversion) gives the same log-prob, and it is
    # the sum of the 1-D log-probs of each dimension.
    per_dim = sum(
        tanh_gaussian.log_prob(mean[:, i : i + 1], log_std[:, i : i + 1], action[:, i : i + 1])
        for i in range(3)
    )
    inside = jnp.all(jnp.abs(action) < 0.999, axis=-1)
    np.testing.assert_allclose(
        np.asarray(logp)[inside], np.asarray(per_dim)[inside], rtol=1e-3, atol=1e-3
    )
    # Where tanh saturates (1 - tanh(u)^2 == 0 in float32) the log-prob stays finite and large.
    _, logp_far = tanh_gaussian.sample_and_log_prob(
        jnp.array([[30.0]]), jnp.array([[-5.0]]), jax.random.key(1)
    )
    assert bool(jnp.isfinite(logp_far[0])) and float(logp_far[0]) > 50.0


# ----------------------------------------------------------------------------- losses / update


def test_terminal_transitions_do_not_bootstrap_in_the_critic_target():
    reward = jnp.array([1.0, 1.0, -2.0])
    terminated = jnp.array([1.0, 0.0, 1.0])
    next_q = jnp.array([[10.0, 10.0, 10.0], [12.0, 7.0, 12.0]])  # [C=2, B=3]
    next_logp = jnp.array([0.5, -0.5, 0.5])
    y = losses.critic_target(reward, terminated, next_q, next_logp, 0.2, 0.9, 2.0)
    expected = [2.0 * 1.0, 2.0 * 1.0 + 0.9 * (7.0 - 0.2 * -0.5), 2.0 * -2.0]
    np.testing.assert_allclose(y, expected, rtol=1e-6)


@pytest.mark.parametrize("terminated", [1.0, 0.0])
def test_critic_learns_reward_only_on_terminal_batch(terminated):
    """Repeated updates on one fixed batch: terminal transitions have Q -> r exactly, while the
    same batch without termination bootstraps and Q grows well beyond r."""
    cfg = SACConfig(hidden_sizes=(32, 32), critic_lr=3e-3, discount=0.9, tau=0.1, batch_size=16)
    sac = make_sac(cfg, 3, 1)
    batch = random_batch(jax.random.key(3), 16, 3, 1, terminated)
    batch = batch.replace(reward=jnp.ones((16,)))
    state = sac.init(jax.random.key(4))
    state, _ = jax.jit(sac.update_many, static_argnums=(1, 3))(
        state, lambda k: batch, jax.random.key(5), 400
    )
    q = sac.networks.critic_apply(state.critic_params, batch.obs, batch.action)
    if terminated:
        np.testing.assert_allclose(q, 1.0, atol=0.05)
    else:
        assert float(jnp.min(q)) > 2.0


def test_target_networks_move_by_tau_and_tau_is_a_vmappable_leaf():
    sac = make_sac(SACConfig(**SMALL), 3, 2)
    state = sac.init(jax.random.key(0))
    # Make the targets differ from the critics so the Polyak step is visible.
    state = state.replace(
        target_critic_params=jax.tree_util.tree_map(lambda p: p + 0.1, state.critic_params)
    )
    batch = random_batch(jax.random.key(1), 32, 3, 2)
    taus = jnp.array([0.005, 0.5])
    states = jax.tree_util.tree_map(lambda x: jnp.stack([x, x]), state)
    states = states.replace(hparams=states.hparams.replace(tau=taus))
    new, _ = jax.jit(jax.vmap(sac.update, in_axes=(0, None, None)))(
        states, batch, jax.random.key(2)
    )
    for i, tau in enumerate(np.asarray(taus)):
        old_t = jax.tree_util.tree_leaves(state.target_critic_params)
        new_c = jax.tree_util.tree_leaves(jax.tree_util.tree_map(lambda x: x[i], new.critic_params))
        new_t = jax.tree_util.tree_leaves(
            jax.tree_util.tree_map(lambda x: x[i], new.target_critic_params)
        )
        for t0, c1, t1 in zip(old_t, new_c, new_t, strict=True):
            np.testing.assert_allclose(t1, (1 - tau) * t0 + tau * c1, rtol=1e-5, atol=1e-6)
    assert int(new.step[0]) == 1


@pytest.mark.parametrize("target_entropy, direction", [(5.0, +1), (-50.0, -1)])
def test_temperature_moves_toward_the_target_entropy(target_entropy, direction):
    """A 1-D tanh-Gaussian has entropy <= log 2, below +5 (alpha must rise) and far above -50
    (alpha must fall)."""
    cfg = SACConfig(target_entropy=target_entropy, init_alpha=0.5, alpha_lr=1e-2, **SMALL)
    sac = make_sac(cfg, 3, 1)
    state = sac.init(jax.random.key(0))
    batch = random_batch(jax.random.key(1), 32, 3, 1)
    upd = jax.jit(sac.update)
    log_alphas = [float(state.log_alpha)]
    for i in range(5):
        state, metrics = upd(state, batch, jax.random.key(10 + i))
        log_alphas.append(float(state.log_alpha))
        assert np.sign(target_entropy - float(metrics["entropy"])) == direction
    assert np.all(direction * np.diff(log_alphas) > 0), log_alphas
    assert float(state.hparams.target_entropy) == target_entropy


def test_default_target_entropy_is_minus_action_size():
    sac = make_sac(SACConfig(**SMALL), 4, 3)
    assert float(sac.init(jax.random.key(0)).hparams.target_entropy) == -3.0


def test_update_many_equals_sequential_updates():
    sac = make_sac(SACConfig(**SMALL), 3, 2)
    state = sac.init(jax.random.key(0))
    data = random_batch(jax.random.key(1), 256, 3, 2)
    sample_fn = lambda k: jax.tree_util.tree_map(
        lambda x: x[jax.random.randint(k, (32,), 0, 256)], data
    )
    key = jax.random.key(2)
    many, metrics = jax.jit(sac.update_many, static_argnums=(1, 3))(state, sample_fn, key, 3)
    seq = state
    seq_losses = []
    update = jax.jit(sac.update)
    for k in jax.random.split(key, 3):
        k_sample, k_update = jax.random.split(k)
        seq, m = update(seq, sample_fn(k_sample), k_update)
        seq_losses.append(m["critic_loss"])
    chex.assert_trees_all_close(many.policy_params, seq.policy_params, rtol=1e-4, atol=1e-5)
    chex.assert_trees_all_close(many.critic_params, seq.critic_params, rtol=1e-4, atol=1e-5)
    assert int(many.step) == 3
    np.testing.assert_allclose(metrics["critic_loss"], np.mean(seq_losses), rtol=1e-4)


def test_no_retrace_across_update_calls():
    sac = make_sac(SACConfig(**SMALL), 3, 2)
    update = jax.jit(chex.assert_max_traces(sac.update, n=1))
    update_many = jax.jit(
        chex.assert_max_traces(lambda s, d, k: sac.update_many(s, lambda kk: d, k, 2), n=1)
    )
    state = sac.init(jax.random.key(0))
    for i in range(3):
        batch = random_batch(jax.random.key(i), 32, 3, 2)
        state, _ = update(state, batch, jax.random.key(100 + i))
        state, _ = update_many(state, batch, jax.random.key(200 + i))
    assert int(state.step) == 9


def test_act_shapes_bounds_and_deterministic_mode():
    sac = make_sac(SACConfig(**SMALL), 3, 2)
    state = sac.init(jax.random.key(0))
    obs = jax.random.normal(jax.random.key(1), (5, 7, 3))  # arbitrary leading batch axes
    a = sac.act(state.actor_params, obs, jax.random.key(2))
    assert a.shape == (5, 7, 2) and bool(jnp.all(jnp.abs(a) < 1.0))
    det = sac.act(state.actor_params, obs, jax.random.key(3), deterministic=True)
    mean, _ = sac.networks.policy_apply(state.policy_params, obs)
    np.testing.assert_allclose(det, jnp.tanh(mean), rtol=1e-6)
    assert not np.allclose(a, sac.act(state.actor_params, obs, jax.random.key(4)))
    with pytest.raises(ValueError, match="obs"):
        sac.act(state.actor_params, jnp.zeros((4, 2)), jax.random.key(0))


def test_observation_normaliser_matches_numpy_and_is_used():
    x1 = np.random.default_rng(0).normal(3.0, 2.0, (50, 4)).astype(np.float32)
    x2 = np.random.default_rng(1).normal(-1.0, 0.5, (30, 4)).astype(np.float32)
    stats = obs_normalizer.update(obs_normalizer.update(obs_normalizer.init(4), x1), x2)
    both = np.concatenate([x1, x2])
    np.testing.assert_allclose(stats.mean, both.mean(0), rtol=1e-5)
    np.testing.assert_allclose(stats.var, both.var(0), rtol=1e-4)

    sac = make_sac(SACConfig(normalize_observations=True, **SMALL), 4, 1)
    state = sac.observe(sac.init(jax.random.key(0)), jnp.asarray(both))
    np.testing.assert_allclose(state.obs_norm.mean, both.mean(0), rtol=1e-5)
    # act sees normalised observations: shifting the stored mean changes the action.
    obs = jnp.asarray(both[:3])
    det = sac.act(state.actor_params, obs, jax.random.key(1), deterministic=True)
    mean_raw, _ = sac.networks.policy_apply(
        state.policy_params, obs_normalizer.normalize(state.obs_norm, obs)
    )
    np.testing.assert_allclose(det, jnp.tanh(mean_raw), rtol=1e-5)
    state, metrics = jax.jit(sac.update)(
        state, random_batch(jax.random.key(2), 32, 4, 1), jax.random.key(3)
    )
    assert all(bool(jnp.isfinite(v)) for v in metrics.values())


# ----------------------------------------------------------------------------- training loop


def test_loop_stores_true_next_obs_and_separates_termination_from_truncation():
    env = point_mass(episode_length=25)
    trainer = make_train_sac(
        env, SACConfig(**SMALL), 400, num_envs=2, num_evals=2, warmup_steps=1000
    )
    run_chunk = jax.jit(chex.assert_max_traces(trainer.run_chunk, n=1))
    ts = trainer.init(jax.random.key(0))
    ts, _ = run_chunk(ts)
    ts, metrics = run_chunk(ts)  # second chunk: no retrace
    assert int(metrics["num_updates"]) == 0  # still warming up
    assert int(ts.env_steps) == 400 and int(ts.buffer.size) == 400
    d = jax.tree_util.tree_map(np.asarray, ts.buffer.data)
    x, v = d.obs[:, 0], d.obs[:, 1]
    v_next = v + 0.1 * 2.0 * d.action[:, 0]
    # Every stored next_obs follows the dynamics, including at time-limit ends (no reset obs).
    np.testing.assert_allclose(d.next_obs[:, 1], v_next, atol=1e-5)
    np.testing.assert_allclose(d.next_obs[:, 0], x + 0.1 * v_next, atol=1e-5)
    # terminated exactly where |x'| > 2; truncations (every 25 steps) are not terminal.
    np.testing.assert_array_equal(d.terminated, (np.abs(d.next_obs[:, 0]) > 2.0).astype(np.float32))
    assert 0 < d.terminated.sum() < 400 // 25  # some real terminations, fewer than episode ends
    # After each episode end the next stored obs of that env is a fresh reset in [-1, 1]^2.
    per_env = d.obs.reshape(200, 2, 2)  # [time, env, obs]: the buffer interleaves the 2 envs
    nxt = d.next_obs.reshape(200, 2, 2)
    cont = np.all(np.isclose(per_env[1:], nxt[:-1]), axis=-1)
    assert (~cont).sum() >= 2 * (200 // 25) - 2  # at least one reset per finished episode
    assert np.all(np.abs(per_env[1:][~cont]) <= 1.0)


def _random_policy_returns(env, key, n=64, steps=50):
    state = jax.vmap(env.reset)(jax.random.split(key, n))

    def step(carry, k):
        s, alive, ret = carry
        s = jax.vmap(env.step)(s, jax.random.uniform(k, (n, 1), minval=-1.0, maxval=1.0))
        return (s, alive * (1 - s.done), ret + alive * s.reward), None

    (_, _, ret), _ = jax.lax.scan(
        step, (state, jnp.ones(n), jnp.zeros(n)), jax.random.split(key, steps)
    )
    return ret


def test_sac_learns_point_mass_over_seeds():
    """3k env steps, 3 seeds in one vmapped program; the episode return is at most 50."""
    env = point_mass(episode_length=50)
    cfg = SACConfig(
        hidden_sizes=(64, 64), batch_size=64, actor_lr=1e-3, critic_lr=1e-3, alpha_lr=1e-3
    )
    trainer = make_train_sac(
        env, cfg, 3000, num_envs=1, num_evals=5, num_eval_envs=16, warmup_steps=200
    )
    _, metrics = jax.jit(jax.vmap(trainer.train))(jax.random.split(jax.random.key(0), 3))
    returns = np.asarray(metrics["eval_returns"])  # [seeds, evals + 1, eval envs]
    assert returns.shape == (3, 6, 16)
    np.testing.assert_array_equal(metrics["eval_env_steps"][0], [0, 600, 1200, 1800, 2400, 3000])
    random_mean = float(jnp.mean(_random_policy_returns(env, jax.random.key(1))))
    final = returns[:, -1].mean(axis=-1)  # per seed
    assert random_mean < 25.0, random_mean
    assert np.all(final > 40.0), (final, random_mean)
    assert np.all(final > returns[:, 0].mean(axis=-1) + 10.0)
    # Updates start once warmup_steps=200 transitions are in the buffer: 2801 of 3000 iterations.
    assert np.all(np.asarray(metrics["num_updates"]).sum(axis=-1) == 2801)


def _make_registry_env(name):
    try:
        from mbjax.envs import make
    except ImportError:  # the package may not re-export `make` yet
        from mbjax.envs.registry import make
    return make(name)


def test_sac_learns_the_library_point_mass_task():
    """mbjax.envs `point_mass` (reward -(x - 1)^2 - 0.01 a^2, 50 steps, never terminates):
    random actions score about -72 and the initial policy about -50."""
    env = _make_registry_env("point_mass")
    cfg = SACConfig(
        hidden_sizes=(64, 64), batch_size=64, actor_lr=1e-3, critic_lr=1e-3, alpha_lr=1e-3
    )
    trainer = make_train_sac(
        env, cfg, 3000, num_envs=1, num_evals=5, num_eval_envs=16, warmup_steps=200
    )
    _, metrics = jax.jit(jax.vmap(trainer.train))(jax.random.split(jax.random.key(0), 3))
    returns = np.asarray(metrics["eval_returns"]).mean(axis=-1)  # [seeds, evals + 1]
    random_mean = float(jnp.mean(_random_policy_returns(env, jax.random.key(1))))
    assert random_mean < -55.0, random_mean
    assert np.all(returns[:, -1] > -25.0), (returns, random_mean)
