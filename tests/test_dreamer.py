"""Dreamer (issue 13 item 4): lambda-returns and the percentile return normaliser against numpy
references, the policy distributions, the CLI end to end, vmapped seeds equal to single runs,
an interrupted and resumed run equal to an uninterrupted one, discrete actions."""

import dataclasses
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mbjax.agents import dreamer
from mbjax.agents.dreamer import networks, returns
from mbjax.agents.program import make_pure_train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _numpy_lambda_returns(rewards, conts, values, gamma, lam):
    """The recursion written out with a Python loop in float64 (Sutton & Barto 12.1)."""
    horizon = rewards.shape[0]
    out = np.zeros_like(rewards)
    nxt = values[horizon]
    for t in reversed(range(horizon)):
        nxt = rewards[t] + gamma * conts[t] * ((1 - lam) * values[t + 1] + lam * nxt)
        out[t] = nxt
    return out


def test_lambda_returns_match_numpy_reference_and_limits():
    rng = np.random.default_rng(0)
    horizon, n = 7, 5
    rewards = rng.normal(size=(horizon, n))
    conts = (rng.uniform(size=(horizon, n)) > 0.2).astype(np.float64)
    values = rng.normal(size=(horizon + 1, n))
    for gamma, lam in ((0.99, 0.95), (0.9, 0.0), (1.0, 1.0)):
        got = returns.lambda_returns(*map(jnp.asarray, (rewards, conts, values)), gamma, lam)
        want = _numpy_lambda_returns(rewards, conts, values, gamma, lam)
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-5)
    # lambda = 0: one-step TD targets; lambda = 1: the discounted sum plus the bootstrap.
    td = returns.lambda_returns(jnp.asarray(rewards), jnp.asarray(conts), jnp.asarray(values),
                                0.9, 0.0)
    np.testing.assert_allclose(np.asarray(td), rewards + 0.9 * conts * values[1:], rtol=1e-5,
                               atol=1e-5)
    ones = np.ones((horizon, n))
    mc = returns.lambda_returns(jnp.asarray(rewards), jnp.asarray(ones), jnp.asarray(values),
                                0.9, 1.0)
    disc = 0.9 ** np.arange(horizon + 1)
    want0 = np.sum(disc[:horizon, None] * rewards, 0) + disc[horizon] * values[horizon]
    np.testing.assert_allclose(np.asarray(mc[0]), want0, rtol=1e-5)


def test_discount_weights_are_the_cumulative_product():
    conts = jnp.asarray([[1.0, 1.0], [0.0, 1.0], [1.0, 0.5]])
    got = np.asarray(returns.discount_weights(conts, 0.9))
    want = np.array([[1.0, 1.0], [0.9, 0.9], [0.0, 0.81]])
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_percentile_return_normaliser_is_an_ema_of_numpy_percentiles():
    rng = np.random.default_rng(1)
    norm = returns.ReturnNorm.create()
    low = high = None
    rate = 0.1
    for i in range(4):
        batch = rng.normal(loc=3.0 * i, scale=5.0, size=(15, 64))
        norm = returns.update_return_norm(norm, jnp.asarray(batch, jnp.float32), rate, 5.0, 95.0)
        p5, p95 = np.percentile(batch, 5), np.percentile(batch, 95)
        low = p5 if low is None else (1 - rate) * low + rate * p5
        high = p95 if high is None else (1 - rate) * high + rate * p95
        np.testing.assert_allclose([float(norm.low), float(norm.high)], [low, high], rtol=1e-4)
    assert float(returns.return_scale(norm, 1.0)) == pytest.approx(high - low, rel=1e-4)
    # Small returns are not scaled up: the scale stays at the limit.
    small = returns.update_return_norm(returns.ReturnNorm.create(),
                                       jnp.linspace(0.0, 0.1, 100), rate, 5.0, 95.0)
    assert float(returns.return_scale(small, 1.0)) == 1.0


def test_policy_distributions():
    key = jax.random.PRNGKey(0)
    raw = jax.random.normal(key, (1000, 4)) * 3.0
    dist = networks.policy_dist(raw, False, 0.1, 1.0, 0.01)
    assert float(dist.std.min()) >= 0.1 and float(dist.std.max()) <= 1.0
    action = networks.sample(dist, key)
    assert float(jnp.abs(action).max()) <= 1.0
    # The log-prob is the normal's (checked against the density written out in numpy).
    x = np.asarray(dist.mean + 0.3 * dist.std)
    m, s = np.asarray(dist.mean), np.asarray(dist.std)
    want = np.sum(-0.5 * ((x - m) / s) ** 2 - np.log(s * np.sqrt(2 * np.pi)), -1)
    np.testing.assert_allclose(np.asarray(networks.log_prob(dist, jnp.asarray(x))), want,
                               rtol=1e-5, atol=1e-6)
    # Discrete: unimix keeps every class >= unimix / K; samples are one-hot; log-probs normalised.
    logits = jnp.asarray([[50.0, 0.0, 0.0]])
    cat = networks.policy_dist(logits, True, 0.1, 1.0, 0.03)
    probs = np.exp(np.asarray(cat.mean))
    np.testing.assert_allclose(probs.sum(), 1.0, rtol=1e-6)
    assert probs.min() >= 0.01 * 0.999
    onehot = networks.sample(cat, key)
    assert float(onehot.sum()) == 1.0 and set(np.asarray(onehot).ravel()) <= {0.0, 1.0}
    assert float(networks.entropy(cat)[0]) > 0.0


def test_config_validation_is_one_line():
    config = dreamer.preset("cartpole_balance", "test")
    with pytest.raises(ValueError, match=r"Config.train_every=3 is invalid"):
        dataclasses.replace(config, train_every=3)
    with pytest.raises(ValueError, match=r"Config.actor_grad='x' is invalid"):
        dataclasses.replace(config, actor_grad="x")
    with pytest.raises(ValueError, match=r"Config.train_ratio=0.1 is invalid"):
        dataclasses.replace(config, train_ratio=0.1)
    with pytest.raises(ValueError, match=r"Config.pixels=True is invalid"):
        dataclasses.replace(config, pixels=True)
    assert set(dreamer.grid_leaves(config)) >= {"actor_lr", "critic_lr", "model.learning_rate",
                                                "entropy", "discount", "lam"}
    disc = dreamer.preset("cartpole_discrete", "cpu")
    assert disc.action_repeat == 1 and disc.actor_grad == "reinforce"
    with pytest.raises(ValueError, match="actor_grad='dynamics' is invalid for discrete"):
        dreamer.make_program(dataclasses.replace(disc, actor_grad="dynamics"))


def test_discrete_actions_run_on_cartpole_discrete():
    config = dataclasses.replace(dreamer.preset("cartpole_discrete", "test"), iterations=1,
                                 num_eval_episodes=0)
    state, metrics = jax.jit(make_pure_train(dreamer.make_program(config)))(
        jax.random.PRNGKey(0))
    assert not np.any(np.asarray(metrics.nonfinite))
    ent = np.asarray(metrics.behavior["policy_entropy"])
    assert np.all(ent > 0.0) and np.all(ent <= np.log(2.0) + 1e-5)
    # Replay holds one-hot actions (what the RSSM reads); the env took their argmax.
    actions = np.asarray(state.buffers.data.action[0, : int(state.buffers.size[0])])
    np.testing.assert_array_equal(actions.sum(-1), 1.0)
    assert set(np.unique(actions)) == {0.0, 1.0}


def test_train_cli_end_to_end(tmp_path):
    out = str(tmp_path / "run")
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.train", "--algo=dreamer", "--env=cartpole_balance",
         "--preset=test", "--quiet", f"--output_dir={out}"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with open(os.path.join(out, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f]
    assert len(records) == 3 and records[-1]["env_steps"] == 48
    assert all(np.isfinite(r["model_loss"]) for r in records)


def test_resumed_run_and_vmapped_seeds_equal_the_uninterrupted_single_run(tmp_path):
    from resume_check import assert_resume_matches, strip_wall_time

    from mbjax.agents.sweep import run_sweep

    config = dreamer.preset("cartpole_balance", "test")
    make_policy, final_state, full = dreamer.train("cartpole_balance", config, seed=3)
    assert len(full) == 3 and all(np.isfinite(r["actor_loss"]) for r in full)
    # The trained policy: the filter carry in, one action in [-1, 1] out.
    init_carry, policy = make_policy(final_state)
    key = jax.random.PRNGKey(0)
    carry, action, _ = policy(init_carry(key), jnp.zeros(4), key)
    assert action.shape == (1,) and float(jnp.abs(action).max()) <= 1.0
    assert float(carry.is_first) == 0.0 and carry.latent.deter.shape == (16,)
    # env steps: random steps, then steps_per_iteration per iteration (action repeat 1).
    assert [r["env_steps"] for r in full] == [24 + 8 * i for i in (1, 2, 3)]
    assert_resume_matches(dreamer.train, full, str(tmp_path / "ck"), 2, env="cartpole_balance",
                          config=config, seed=3)
    # Seeds 3 and 5 vmapped in one program: seed 3's records are the single run's.
    states, records, _ = run_sweep(dreamer.make_program(config), [3, 5])
    vmapped, single = strip_wall_time(records[0]), strip_wall_time(full)
    assert len(vmapped) == len(single)
    for got, want in zip(vmapped, single, strict=True):
        assert got.keys() == want.keys()
        for k, v in want.items():
            assert got[k] == (v if v is None else pytest.approx(v, rel=1e-4, abs=1e-5)), k
    assert strip_wall_time(records[1]) != single
    # Grid leaves set the run state's numbers (no recompilation: they are array leaves).
    leaves = dreamer.grid_leaves(config)
    s = jax.tree.map(lambda x: jnp.asarray(x[0]), states)
    s = leaves["model.learning_rate"](leaves["actor_lr"](s, 0.5), 0.25)
    s = leaves["entropy"](s, 0.125)
    assert float(s.behavior.actor_opt.hyperparams["learning_rate"]) == 0.5
    assert float(s.model.opt_state.hyperparams["learning_rate"]) == 0.25
    assert float(s.behavior.hparams.entropy) == 0.125


@pytest.mark.slow
def test_pixels_200_updates_finite_and_reconstruction_falls():
    """Dreamer from pixels of the own cartpole_swingup renderer (16x16 here, to stay cheap):
    200 updates (world model + actor-critic) without NaN, and the reconstruction loss of a fixed
    replayed batch falls by at least half."""
    from mbjax.agents.dreamer import world_model
    from mbjax.models.rssm import RSSMConfig

    model = RSSMConfig(deter=16, hidden=16, stoch=4, classes=4, layers=1, batch_size=4,
                       seq_len=8, bins=31, learning_rate=1e-3, encoder="conv", image_size=16,
                       depth=4)
    config = dataclasses.replace(
        dreamer.preset("cartpole_swingup", "test"), pixels=True, model=model,
        steps_per_iteration=100, train_every=2, train_ratio=32.0, iterations=2,
        num_eval_episodes=0)
    assert config.updates_per_block * config.blocks_per_iteration * config.iterations == 200
    parts = dreamer.make_parts(config)
    program = dreamer.make_program(config, parts)
    state0 = program.init(jax.random.PRNGKey(0))
    assert state0.buffers.data.obs.dtype == jnp.uint8
    assert state0.buffers.data.obs.shape[-3:] == (16, 16, 3)
    state, metrics = jax.jit(make_pure_train(program._replace(init=lambda key: state0)))(
        jax.random.PRNGKey(0))
    assert not np.any(np.asarray(metrics.nonfinite))
    batch = world_model.sample_batch(state.buffers, jax.random.PRNGKey(1), 4, 8)

    def rec(params):
        return float(jnp.mean(parts.model.fns.loss_terms(params, batch, jax.random.PRNGKey(2)).rec))

    before, after = rec(state0.model.params), rec(state.model.params)
    assert after <= 0.5 * before, (before, after)


def _one_actor_step(actor_grad: str, feat_dim: int = 6, n: int = 128, lr: float = 0.05):
    """One SGD step on the actor loss of `behavior._make_losses` with a stand-in imagination
    whose reward is known: every start has the same features (the actor cannot tell them
    apart), and the reward of each imagined step is the action itself (+a pays, -a costs).
    Returns the policy mean before and after the step (one action dim)."""
    from mbjax.agents.dreamer import behavior as bh
    from mbjax.models.rssm.transforms import bins as make_bins

    config = dataclasses.replace(dreamer.preset("cartpole_balance", "test"),
                                 actor_grad=actor_grad, entropy=0.0)
    horizon = config.horizon
    actor = networks.Actor(config.hidden, config.layers, 2, config.actor_out_scale)
    critic = networks.Critic(config.hidden, config.layers, 31)
    feat = jnp.broadcast_to(jax.random.normal(jax.random.PRNGKey(1), (feat_dim,)),
                            (horizon + 1, n, feat_dim))

    def dist(params, f):
        return networks.policy_dist(actor.apply(params, f), False, config.min_std,
                                    config.max_std, config.action_unimix)

    def imagine(model_params, actor_params, start, key):
        d = dist(actor_params, feat[:-1])
        action = networks.sample(d, key)  # reparameterised: the dynamics gradient flows
        if actor_grad == "reinforce":
            action = jax.lax.stop_gradient(action)
        return bh.Imagined(feat, action, networks.log_prob(d, jax.lax.stop_gradient(action)),
                           networks.entropy(d), action[..., 0], jnp.ones((horizon, n)))

    actor_loss, _ = bh._make_losses(config, imagine, critic, make_bins(31, 20.0),
                                    actor_grad == "dynamics")
    k_actor, k_critic, k_loss = jax.random.split(jax.random.PRNGKey(0), 3)
    actor_params = actor.init(k_actor, feat[0])
    critic_params = critic.init(k_critic, feat[0])
    state = bh.BehaviorState(actor_params, critic_params, critic_params, None, None,
                             returns.ReturnNorm.create(),
                             bh.Hyper(*(jnp.float32(x) for x in (0.0, 0.99, 0.95, 0.02, 0.01))),
                             jnp.zeros((), jnp.int32))
    grads, _ = jax.jit(jax.grad(actor_loss, has_aux=True))(actor_params, state, None,
                                                           jnp.zeros(n), jnp.ones(n), k_loss)
    new = jax.tree.map(lambda p, g: p - lr * g, actor_params, grads)
    mean = lambda p: float(dist(p, feat[0, 0]).mean[0])  # noqa: E731
    return mean(actor_params), mean(new)


@pytest.mark.parametrize("actor_grad", ["reinforce", "dynamics"])
def test_actor_gradient_moves_the_policy_towards_higher_return(actor_grad):
    """Reward = action: a descent step on the actor loss must raise the policy mean (a sign
    error in the REINFORCE term or in the dynamics objective would lower it)."""
    before, after = _one_actor_step(actor_grad)
    assert after > before + 1e-3, (before, after)


def test_fresh_actor_starts_near_the_zero_action_with_wide_std():
    """DreamerV3's policy outscale 0.01: the untrained policy's mean is ~0 and its std near
    max_std for any latent, not a random per-state push to one side."""
    config = dreamer.preset("cartpole_balance", "cpu")
    parts = dreamer.make_parts(config)
    params = parts.behavior.init(jax.random.PRNGKey(0)).actor_params
    feat = 3.0 * jax.random.normal(jax.random.PRNGKey(1), (512, parts.model.state_size))
    d = parts.behavior.dist(params, feat)
    assert float(jnp.max(jnp.abs(d.mean))) < 0.05
    assert float(jnp.min(d.std)) > 0.85
