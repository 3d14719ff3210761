"""Tests for SAC (mbjax.agents.sac): distribution, losses, update, and SAC alone as a Program."""

from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import norm

from mbjax import acting
from mbjax.agents import sac
from mbjax.agents.program import run_host
from mbjax.agents.sac import SACConfig, losses, make_sac
from mbjax.agents.sac import distribution as tanh_gaussian
from mbjax.agents.sac import normalizer as obs_normalizer
from mbjax.types import Transition

SMALL = dict(hidden_sizes=(32, 32), batch_size=32)


def random_batch(key, batch_size, obs_size, action_size, terminated=0.0):
    k1, k2, k3, k4 = jax.random.split(key, 4)
    return Transition(
        obs=jax.random.normal(k1, (batch_size, obs_size)),
        action=jax.random.uniform(k2, (batch_size, action_size), minval=-1.0, maxval=1.0),
        reward=jax.random.normal(k3, (batch_size,)),
        next_obs=jax.random.normal(k4, (batch_size, obs_size)),
        terminated=jnp.full((batch_size,), terminated, jnp.float32),
        truncated=jnp.zeros((batch_size,), jnp.float32),
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
    cfg = SACConfig(hidden_sizes=(64, 64), target_entropy=-2.0)
    with pytest.raises(ValueError, match="hidden_sizes"):  # configs are hashable: no lists
        SACConfig(hidden_sizes=[64, 64])
    with pytest.raises(ValueError, match="obs_size"):
        make_sac(cfg, 0, 1)
    with pytest.raises(ValueError, match="action_size"):
        make_sac(cfg, 3, 1.5)


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


# ----------------------------------------------------------------------------- SAC alone


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"num_epochs": 0}, "num_epochs"),
        ({"steps_per_epoch": 101, "num_envs": 2}, "steps_per_epoch"),
        ({"init_random_steps": 3, "num_envs": 2}, "init_random_steps"),
        ({"init_random_steps": -1}, "init_random_steps"),
        ({"updates_per_step": 0}, "updates_per_step"),
        ({"episode_length": 0}, "episode_length"),
        ({"replay_capacity": 0}, "replay_capacity"),
        ({"num_eval_episodes": 1.5}, "num_eval_episodes"),
        ({"sac": {"batch_size": 3}}, "sac"),
    ],
)
def test_bad_loop_config_raises_value_error_naming_the_field(kw, match):
    with pytest.raises(ValueError, match=f"Config.{match}="):
        sac.Config(**kw)


def test_presets():
    paper = sac.preset("brax/hopper", "paper")
    assert paper.env == "brax/hopper" and paper.total_env_steps == 1_001_000
    assert paper.sac == SACConfig(hidden_sizes=(256, 256), batch_size=256)
    assert paper.updates_per_step == 1 and paper.replay_capacity == 1_000_000
    for name in ("cpu", "test"):
        assert sac.preset("no_entry_env", name).env == "no_entry_env"
    with pytest.raises(ValueError, match="preset"):
        sac.preset("point_mass", "huge")


def _small_config(**kw) -> sac.Config:
    base = dict(env="point_mass", num_epochs=2, steps_per_epoch=40, num_envs=2,
                init_random_steps=20, updates_per_step=1, num_eval_episodes=3,
                sac=SACConfig(**SMALL))
    return sac.Config(**{**base, **kw})


def test_epochs_collect_update_and_evaluate_without_retracing():
    loop = sac.make_loop(_small_config())
    state = loop.init(jax.random.key(0))
    assert int(state.env_steps) == 20 and int(state.buffer.size) == 20
    assert int(state.sac.step) == 0  # random exploration only
    epoch = jax.jit(chex.assert_max_traces(loop.epoch, n=1))
    state, first = epoch(state)
    state, second = epoch(state)
    assert int(state.epoch) == 2 and int(state.env_steps) == 100
    assert int(state.buffer.size) == 100
    # 20 iterations of 2 env steps per epoch, each followed by updates_per_step * num_envs.
    assert int(state.sac.step) == 2 * 20 * 2
    assert int(second.env_steps) == 100 and not bool(second.nonfinite)
    # point_mass episodes are 50 steps: each env finished its first one at the 100th env step.
    assert np.isnan(float(first.train_return)) and np.isfinite(float(second.train_return))
    assert np.isfinite(float(second.episode_return)) and float(second.eval_return_std) >= 0
    assert set(second.sac) >= {"critic_loss", "actor_loss", "alpha", "entropy"}


def test_vmapped_seeds_equal_single_runs():
    config = _small_config()
    keys = jnp.stack([jax.random.PRNGKey(s) for s in (0, 1)])
    _, batched = jax.jit(jax.vmap(sac.make_train(config)))(keys)
    assert batched.episode_return.shape == (2, 2)
    program = sac.make_program(config)
    for i, seed in enumerate((0, 1)):
        _, records = run_host(program, seed=seed)
        for name, got in (("episode_return", batched.episode_return[i]),
                          ("critic_loss", batched.sac["critic_loss"][i])):
            np.testing.assert_allclose([r[name] for r in records], got, rtol=1e-4, err_msg=name)
        assert [r["env_steps"] for r in records] == [60, 100]
    assert not np.allclose(batched.episode_return[0], batched.episode_return[1])


@pytest.fixture(scope="module")
def point_mass_run():
    config = sac.preset("point_mass", "test")
    state, records = run_host(sac.make_program(config), seed=0)
    return config, state, records


def test_sac_alone_learns_point_mass(point_mass_run):
    """mbjax.envs `point_mass` (reward -(x - 1)^2 - 0.01 a^2, 50 steps): random actions score
    about -45, reaching x=1 and staying there about -6."""
    config, _, records = point_mass_run
    returns = [r["episode_return"] for r in records]
    assert [r["env_steps"] for r in records] == [300, 400, 500, 600, 700, 800]
    assert max(returns[-2:]) > -20, returns
    assert all(np.isfinite(r["critic_loss"]) and r["train_return"] is not None for r in records)


def test_make_policy_controls_the_env(point_mass_run):
    config, state, _ = point_mass_run
    init_carry, policy = sac.make_policy(config, state)
    env = sac.make_loop(config).env

    episode = jax.jit(lambda k: acting.policy_return(env, init_carry, policy, k, 50))
    assert float(episode(jax.random.PRNGKey(5))) > -20


def test_learning_rates_are_leaves_a_grid_vmaps_with_one_trace():
    from mbjax.agents.sac import with_learning_rates

    sac = make_sac(SACConfig(**SMALL), 3, 2)
    state = sac.init(jax.random.key(0))
    batch = random_batch(jax.random.key(1), 32, 3, 2)
    chex.clear_trace_counter()
    update = jax.jit(chex.assert_max_traces(sac.update, n=1))
    rates = (1e-5, 3e-4, 1e-2)
    alone = [update(with_learning_rates(state, actor=r, critic=r), batch, jax.random.key(2))[0]
             for r in rates]
    first = lambda s: np.asarray(jax.tree_util.tree_leaves(s.policy_params)[0])  # noqa: E731
    assert not np.allclose(first(alone[0]), first(alone[2]))  # the rate is really used
    grid = jax.vmap(lambda r: with_learning_rates(state, actor=r, critic=r))(jnp.asarray(rates))
    batched, _ = jax.jit(jax.vmap(sac.update, in_axes=(0, None, None)))(
        grid, batch, jax.random.key(2))
    for i in range(3):
        chex.assert_trees_all_close(
            jax.tree_util.tree_map(lambda x, i=i: x[i], batched.policy_params),
            alone[i].policy_params, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="unknown optimizer hyperparameter"):
        from mbjax.optim import set_hyperparams
        set_hyperparams(state.policy_opt_state, momentum=0.9)
