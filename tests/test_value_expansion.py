"""SAC's model-based value expansion (MVE, STEVE): the targets against numpy references, the
horizon-0 cases against SAC's own target, and the run (pure, host with exact resume)."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mbjax.agents import sac
from mbjax.agents.sac import expansion
from mbjax.models import EnsembleConfig, make_ensemble
from mbjax.types import Transition

OBS, ACT, B = 3, 2, 16


def _random_rollout(rng, horizon, members, hard=True):
    done = (rng.random((horizon, members, B)) < 0.2).astype(np.float32) if hard else \
        rng.random((horizon, members, B)).astype(np.float32) * 0.3
    return expansion.ExpansionRollout(
        obs=np.zeros((horizon + 1, members, B, OBS), np.float32),
        action=np.zeros((horizon + 1, members, B, ACT), np.float32),
        log_prob=rng.normal(size=(horizon + 1, members, B)).astype(np.float32),
        reward=rng.normal(size=(horizon, members, B)).astype(np.float32), done=done)


def _numpy_horizon_targets(roll, r0, term0, q, alpha, gamma, scale):
    """T_i by the definition, one (critic, member, row) at a time."""
    c_n, h1, m_n, b_n = q.shape
    out = np.zeros(q.shape)
    for c in range(c_n):
        for m in range(m_n):
            for b in range(b_n):
                for i in range(h1):
                    alive, total = 1.0 - term0[b], scale * r0[b]
                    for k in range(1, i + 1):
                        total += gamma**k * alive * (scale * roll.reward[k - 1, m, b]
                                                     - alpha * roll.log_prob[k - 1, m, b])
                        alive *= 1.0 - roll.done[k - 1, m, b]
                    total += gamma ** (i + 1) * alive * (q[c, i, m, b]
                                                         - alpha * roll.log_prob[i, m, b])
                    out[c, i, m, b] = total
    return out


def test_horizon_targets_and_steve_weights_equal_numpy():
    rng = np.random.default_rng(0)
    horizon, members, critics = 3, 2, 2
    roll = _random_rollout(rng, horizon, members, hard=False)
    r0 = rng.normal(size=B).astype(np.float32)
    term0 = (rng.random(B) < 0.2).astype(np.float32)
    q = rng.normal(size=(critics, horizon + 1, members, B)).astype(np.float32)
    c = expansion.Scalars(alpha=jnp.float32(0.3), discount=jnp.float32(0.9),
                          scale=jnp.float32(2.0))
    targets = np.asarray(expansion.horizon_targets(roll, r0, term0, q, c))
    np.testing.assert_allclose(targets, _numpy_horizon_targets(roll, r0, term0, q, 0.3, 0.9, 2.0),
                               rtol=1e-5, atol=1e-5)

    clipped = np.asarray(expansion.horizon_targets(roll, r0, term0, q.min(0), c))
    target, weights = map(np.asarray, expansion.steve_combine(targets, clipped))
    var = targets.transpose(1, 0, 2, 3).reshape(horizon + 1, -1, B).var(axis=1)
    assert np.any(var.max(0) == 0)  # a terminal row: every horizon agrees, weights stay finite
    var = np.maximum(var, expansion.MIN_VARIANCE)
    expected_w = (1 / var) / (1 / var).sum(0)
    np.testing.assert_allclose(weights.sum(0), 1.0, rtol=1e-6)
    np.testing.assert_allclose(weights, expected_w, rtol=1e-4)
    np.testing.assert_allclose(target, (expected_w * clipped.mean(1)).sum(0), rtol=1e-4,
                               atol=1e-5)


def test_mve_prefix_targets_equal_numpy_and_the_full_horizon_target():
    rng = np.random.default_rng(1)
    horizon = 4
    roll = _random_rollout(rng, horizon, 1, hard=True)
    r0 = rng.normal(size=B).astype(np.float32)
    term0 = (rng.random(B) < 0.2).astype(np.float32)
    q_last = rng.normal(size=B).astype(np.float32)
    alpha, gamma, scale = 0.2, 0.95, 1.5
    c = expansion.Scalars(jnp.float32(alpha), jnp.float32(gamma), jnp.float32(scale))
    ys = np.asarray(expansion.mve_prefix_targets(roll, r0, term0, q_last, c))
    lp, rw, dn = roll.log_prob[:, 0], roll.reward[:, 0], roll.done[:, 0]
    for b in range(B):
        u = q_last[b] - alpha * lp[horizon, b]  # soft value of s_{H+1}
        expected = {}
        for k in range(horizon, 0, -1):  # y_k along the imagined states s_k
            expected[k] = scale * rw[k - 1, b] + gamma * (1 - dn[k - 1, b]) * u
            u = expected[k] - alpha * lp[k - 1, b]
        expected[0] = scale * r0[b] + gamma * (1 - term0[b]) * u
        np.testing.assert_allclose(ys[:, b], [expected[t] for t in range(horizon + 1)],
                                   rtol=1e-5, atol=1e-5)
    # y_0 is the H-step target T_H with the same bootstrap (two different computations).
    q = np.zeros((1, horizon + 1, 1, B), np.float32)
    q[0, horizon, 0] = q_last
    t_h = np.asarray(expansion.horizon_targets(roll, r0, term0, q, c))[0, horizon, 0]
    np.testing.assert_allclose(ys[0], t_h, rtol=1e-5, atol=1e-5)


def _learner_and_batch():
    config = sac.SACConfig(hidden_sizes=(16, 16), batch_size=B, init_alpha=0.5)
    learner = sac.make_sac(config, OBS, ACT)
    state = learner.init(jax.random.key(0))
    rng = np.random.default_rng(2)
    batch = Transition(
        obs=rng.normal(size=(B, OBS)).astype(np.float32),
        action=rng.uniform(-1, 1, (B, ACT)).astype(np.float32),
        reward=rng.normal(size=B).astype(np.float32),
        next_obs=rng.normal(size=(B, OBS)).astype(np.float32),
        terminated=(rng.random(B) < 0.3).astype(np.float32), truncated=np.zeros(B, np.float32))
    model = make_ensemble(EnsembleConfig(ensemble_size=3, num_elites=2, hidden_sizes=(8,),
                                         predict_reward=True, predict_termination=True),
                          OBS, ACT)
    return learner, state, batch, model, model.init(jax.random.key(1))


@pytest.mark.parametrize("kind", ["mve", "steve"])
def test_horizon_zero_update_is_sacs_update(kind):
    """With H = 0 both expansions reduce to SAC's one-step target: the whole update (critic
    loss, new critic parameters) equals SAC's."""
    learner, state, batch, model, model_state = _learner_and_batch()
    fn = expansion.make_targets_fn(kind, model, model_state, 0, None, None)
    key = jax.random.key(7)
    ours, m_ours = jax.jit(lambda s: learner.update(s, batch, key, fn))(state)
    sacs, m_sacs = jax.jit(lambda s: learner.update(s, batch, key))(state)
    np.testing.assert_allclose(m_ours["critic_loss"], m_sacs["critic_loss"], rtol=1e-6)
    np.testing.assert_allclose(m_ours["target_q_mean"], m_sacs["target_q_mean"], rtol=1e-6)
    for a, b in zip(jax.tree_util.tree_leaves(ours.critic_params),
                    jax.tree_util.tree_leaves(sacs.critic_params), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_longer_horizons_change_the_targets_and_steve_reports_its_weights():
    learner, state, batch, model, model_state = _learner_and_batch()
    key = jax.random.key(7)
    _, base = jax.jit(lambda s: learner.update(s, batch, key))(state)
    for kind in ("mve", "steve"):
        fn = expansion.make_targets_fn(kind, model, model_state, 2, None, None)
        _, m = jax.jit(lambda s, fn=fn: learner.update(s, batch, key, fn))(state)
        assert abs(float(m["target_q_mean"]) - float(base["target_q_mean"])) > 1e-4
        if kind == "steve":
            assert 0.0 <= float(m["expansion_mean_horizon"]) <= 2.0


def _small(kind: str):
    """point_mass with 50-step episodes and epochs, the model refitted every epoch."""
    config = sac.preset("point_mass", "test")
    return dataclasses.replace(
        config, value_expansion=kind, num_epochs=3, steps_per_epoch=50, episode_length=50,
        init_random_steps=100, updates_per_step=2, num_eval_episodes=1,
        expansion=dataclasses.replace(config.expansion, model_train_every=50))


def test_expanded_runs_are_finite_reproducible_and_resume(tmp_path):
    from resume_check import assert_resume_matches

    config = _small("steve")
    _, _, full = sac.train("point_mass", config, seed=1)
    assert len(full) == 3
    assert all(np.isfinite(r["critic_loss"]) and r["model_holdout_mse"] is not None
               for r in full)
    assert 0.0 <= full[-1]["expansion_mean_horizon"] <= config.expansion.horizon
    assert_resume_matches(sac.train, full, str(tmp_path / "ck"), 2, env="point_mass",
                          config=config, seed=1)


def test_mve_epoch_counts_steps_and_stays_finite():
    config = _small("mve")
    program = sac.make_program(config)
    state = program.init(jax.random.key(0))
    state, metrics = jax.jit(program.segments[0].step)(state)
    assert int(metrics.env_steps) == config.init_random_steps + config.steps_per_epoch
    assert np.isfinite(float(metrics.sac["critic_loss"]))
    assert int(state.buffer.size) == config.init_random_steps + config.steps_per_epoch
