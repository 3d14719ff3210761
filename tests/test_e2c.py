"""E2C (issue 14 item 4): the locally linear latent transition, the E2C Gaussian KL terms
against numpy closed forms, the uniform-state triples against the renderer and the dynamics,
learning (the latent linear prediction error falls), the policy,
the CLI end to end and an exact resume. (Vmapped seeds == single runs is not tested here: a
second compile of the whole program costs more than the test budget allows.)"""

import dataclasses
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mbjax.agents import e2c

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = "pendulum_swingup"


def _config(**kw):
    return dataclasses.replace(e2c.preset(ENV, "test"), **kw)


def _random_net(latent=4, action=2, scale=30.0):
    """An E2CNet with its transition output weights scaled up, so v, r, B, o are O(1) (a tiny
    MLP image encoder: only the transition is under test)."""
    config = _config(latent_size=latent, transition_hidden=(16,), encoder="mlp", hidden_size=8,
                     hidden_layers=1)
    net = e2c.E2CNet(config, (8, 8, 3), action)
    params = net.init(jax.random.PRNGKey(0), jnp.zeros((1, 8, 8, 3), jnp.uint8))
    out = params["params"]["trans_out"]
    params["params"]["trans_out"] = {"kernel": out["kernel"] * scale,
                                     "bias": jax.random.normal(jax.random.PRNGKey(1),
                                                               out["bias"].shape)}
    return net, params


def test_transition_is_locally_linear_with_rank_one_A():
    net, params = _random_net()
    zs = jax.random.normal(jax.random.PRNGKey(2), (5, 4))
    us = jax.random.uniform(jax.random.PRNGKey(3), (5, 2), minval=-1, maxval=1)

    @jax.jit  # one compile instead of one per eager op
    def compute(zs, us):
        trans = net.apply(params, zs, method=e2c.E2CNet.transition)
        step = e2c.mean_step(net, params, zs, us)
        # d f / d u of the mean transition, and d/dz of A z + B u + o with A, B, o frozen.
        du = jax.vmap(jax.jacfwd(lambda z, u: e2c.mean_step(net, params, z, u), argnums=1))(
            zs, us)
        dz = jax.vmap(jax.jacfwd(lambda z, u, t: t.apply(z, u)))(zs, us, trans)
        return trans, trans.A(), step, du, dz

    trans, a_net, step, du, dz = compute(zs, us)
    v, r, B, o = (np.asarray(x, np.float64) for x in trans)
    assert np.abs(v).max() > 0.1 and np.abs(B).max() > 0.1  # not trivially I / 0
    A = np.eye(4)[None] + v[:, :, None] * r[:, None, :]
    np.testing.assert_allclose(np.asarray(a_net), A, rtol=1e-5, atol=1e-6)
    expected = (np.einsum("bij,bj->bi", A, zs) + np.einsum("bij,bj->bi", B, us) + o)
    np.testing.assert_allclose(np.asarray(step), expected, rtol=1e-4, atol=1e-5)
    # The jacobian w.r.t. u is B(z) exactly (A, B, o depend on z only): linear in u.
    np.testing.assert_allclose(np.asarray(du), B, rtol=1e-5, atol=1e-6)
    # With A, B, o frozen at z, the map is A z + B u + o: its z-jacobian is A.
    np.testing.assert_allclose(np.asarray(dz), A, rtol=1e-5, atol=1e-6)


def _np_kl(m1, c1, m2, c2):
    """KL(N(m1, c1) || N(m2, c2)) in float64 numpy."""
    inv = np.linalg.inv(c2)
    d = m2 - m1
    return 0.5 * (np.trace(inv @ c1) + d @ inv @ d - len(m1) + np.linalg.slogdet(c2)[1]
                  - np.linalg.slogdet(c1)[1])


def test_kl_terms_equal_numpy_closed_forms():
    net, params = _random_net(latent=3, action=1, scale=10.0)
    rng = np.random.default_rng(0)

    @jax.jit
    def compute(z, q, u, target):
        trans = net.apply(params, z, method=e2c.E2CNet.transition)
        return (trans, e2c.kl_to_standard_normal(q),
                e2c.kl_prediction_to_encoding(trans, q, u, target))

    for _ in range(4):
        mean, mean2 = rng.normal(size=3), rng.normal(size=3)
        std, std2 = rng.uniform(0.2, 1.5, 3), rng.uniform(0.2, 1.5, 3)
        u = rng.uniform(-1, 1, 1)
        q = e2c.Gaussian(jnp.float32(mean), jnp.float32(std))
        target = e2c.Gaussian(jnp.float32(mean2), jnp.float32(std2))
        trans, kl_prior, kl_trans = compute(jnp.float32(rng.normal(size=3)), q, jnp.float32(u),
                                            target)
        np.testing.assert_allclose(float(kl_prior),
                                   _np_kl(mean, np.diag(std**2), np.zeros(3), np.eye(3)),
                                   rtol=1e-5)
        v, r, B, o = (np.asarray(x, np.float64) for x in trans)
        A = np.eye(3) + np.outer(v, r)
        m1 = A @ mean + B @ u + o
        c1 = A @ np.diag(std**2) @ A.T
        np.testing.assert_allclose(float(kl_trans), _np_kl(m1, c1, mean2, np.diag(std2**2)),
                                   rtol=1e-4)


def test_uniform_triples_render_the_sampled_states_and_follow_the_dynamics():
    config = _config()
    env = e2c.make_env(config)
    task = env.unwrapped

    @jax.jit
    def compute(key):
        trans, q = e2c.states.uniform_triples(env, ENV, key, 256)
        q_next = jax.vmap(task.dynamics)(q, task.action_scale * trans.action)
        return (trans, q, q_next, jax.vmap(env.render_fn)(q), jax.vmap(env.render_fn)(q_next),
                jax.vmap(task.reward)(q, task.action_scale * trans.action, q_next))

    trans, q, q_next, frame, next_frame, reward = compute(jax.random.PRNGKey(0))
    # x_t shows q_t last; x_{t+1} = [q_t's frame, the frame of q_t stepped by u_t].
    np.testing.assert_array_equal(np.asarray(trans.obs[..., -3:]), np.asarray(frame))
    np.testing.assert_array_equal(np.asarray(trans.next_obs[..., :3]), np.asarray(frame))
    np.testing.assert_array_equal(np.asarray(trans.next_obs[..., -3:]), np.asarray(next_frame))
    np.testing.assert_allclose(np.asarray(trans.reward), np.asarray(reward), rtol=1e-5)
    assert np.abs(np.asarray(trans.action)).max() <= 1.0
    # Every angle is covered, upright included (what reset-started random episodes never show).
    th = np.asarray(e2c.states.goal_error(env, ENV, q))
    assert th.min() < 0.1 and th.max() > np.pi - 0.1
    assert np.histogram(th, bins=4, range=(0, np.pi))[0].min() > 256 / 4 / 2
    np.testing.assert_allclose(float(e2c.states.goal_error(env, ENV, jnp.array([2 * np.pi - 0.1,
                                                                                 3.0]))), 0.1,
                               rtol=1e-5)
    a, b = np.random.default_rng(0).normal(size=(2, 50))
    np.testing.assert_allclose(float(e2c.states.correlation(jnp.float32(a), jnp.float32(a + b))),
                               np.corrcoef(a, a + b)[0, 1], rtol=1e-5)


@pytest.mark.parametrize("start_states", ["uniform", "reset"])
def test_random_data_counts_env_steps(start_states):
    config = _config(start_states=start_states)
    built = e2c.build(config)
    data, _, steps = jax.jit(lambda k: e2c.random_data(built, k))(jax.random.PRNGKey(0))
    assert data.transition.obs.shape == (2 * 20, 16, 16, 6) and float(data.valid.sum()) == 2 * 20
    assert int(steps) == (2 * 20 * 2 if start_states == "uniform" else 2 * 20)


@pytest.fixture(scope="module")
def full_run():
    """An uninterrupted 3-iteration test-preset run through the driver, seed 3."""
    _, state, records = e2c.train(ENV, _config(), seed=3)
    return state, records


def test_prediction_error_falls_over_training(full_run):
    _, records = full_run
    err = [r["prediction_error"] for r in records]
    loss = [r["loss"] for r in records]
    # Acceptance: the latent linear prediction error (scale-free) falls over training.
    assert err[-1] < 0.25 * err[0], err
    assert loss[-1] < 0.6 * loss[0], loss
    assert all(np.isfinite(r["episode_return"]) for r in records)
    # Per iteration 2 * 20 uniform triples of frame_stack = 2 env steps + one 20-step MPC episode.
    assert records[-1]["env_steps"] == 3 * (2 * 20 * 2 + 20)
    assert all(-1.0 <= r["goal_correlation"] <= 1.0 for r in records)


def test_policy_grid_leaves_and_bad_envs(full_run):
    state, _ = full_run
    config = _config()
    init_carry, policy = e2c.make_policy(config, state)
    env = e2c.make_env(config)
    obs = env.reset(jax.random.PRNGKey(0)).obs
    carry, action, extras = jax.jit(policy)(init_carry(jax.random.PRNGKey(1)), obs, None)
    assert action.shape == (1,) and -1 <= float(action[0]) <= 1
    assert np.isfinite(float(extras["planned_return"]))
    assert set(e2c.grid_leaves(config)) == {"learning_rate", "transition_kl_weight",
                                            "state_cost", "action_cost", "exploration_noise"}
    with pytest.raises(ValueError, match="maze/dyna has discrete actions; e2c needs"):
        e2c.make_program(dataclasses.replace(config, env="maze/dyna"))
    with pytest.raises(ValueError, match="e2c needs a rendered goal image"):
        e2c.make_program(dataclasses.replace(config, env="brax/ant"))
    with pytest.raises(ValueError, match="image_size=24 is invalid"):
        dataclasses.replace(config, image_size=24)


def test_train_cli_end_to_end(tmp_path):
    out = str(tmp_path / "run")
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.train", "--algo=e2c", f"--env={ENV}",
         "--preset=test", "--quiet", "--seed=3", f"--output_dir={out}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert os.path.exists(os.path.join(out, "metrics.jsonl"))


def test_interrupted_and_resumed_run_equals_uninterrupted(tmp_path, full_run):
    from resume_check import assert_resume_matches

    _, full = full_run
    assert len(full) == 3
    assert_resume_matches(e2c.train, full, str(tmp_path / "ck"), 2, env=ENV, config=_config(),
                          seed=3)
