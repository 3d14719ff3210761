"""Propagation through an ensemble: member assignment per mode, maths of returns, risk, shapes."""

from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mbjax.models import EnsembleConfig, make_ensemble
from mbjax.rollout import (
    PropagationConfig,
    aggregate_returns,
    make_model_objective,
    propagate,
)

OBS, ACT = 3, 2


def constant_model(
    num_members=4,
    num_elites=None,
    sigma=None,
    reward_per_member=None,
    termination_prob=None,
):
    """An ensemble whose member e adds the constant delta (e + 1) to obs[0] every step.

    Its output layer has zero weights, so its predictions are its biases (identity normalizers):
    a trajectory reveals which member produced each step. sigma: constant aleatoric std.
    """
    cfg = EnsembleConfig(
        ensemble_size=num_members,
        hidden_sizes=(8,),
        probabilistic=sigma is not None,
        predict_reward=reward_per_member is not None,
        predict_termination=termination_prob is not None,
        num_elites=num_elites,
    )
    model = make_ensemble(cfg, OBS, ACT)
    st = model.init(jax.random.PRNGKey(0))
    d = model.target_size
    layers = list(st.params["layers"])
    b = jnp.zeros_like(layers[-1]["b"])
    b = b.at[:, 0].set(jnp.arange(1.0, num_members + 1.0))
    if reward_per_member is not None:
        b = b.at[:, OBS].set(jnp.asarray(reward_per_member, jnp.float32))
    if sigma is not None:
        b = b.at[:, d : 2 * d].set(2.0 * math.log(sigma))
    if termination_prob is not None:
        b = b.at[:, -1].set(math.log(termination_prob / (1.0 - termination_prob)))
    layers[-1] = {"w": jnp.zeros_like(layers[-1]["w"]), "b": b}
    return model, st.replace(params={**st.params, "layers": layers})


def reward_x0(obs, action, next_obs):
    return next_obs[0]


def run(model, st, cfg, n=5, horizon=6, key=1, **kw):
    actions = jax.random.uniform(jax.random.PRNGKey(42), (n, horizon, ACT), minval=-1, maxval=1)
    fn = jax.jit(
        lambda s, o, a, k: propagate(model, cfg, s, o, a, k, return_trajectories=True, **kw)
    )
    return fn(st, jnp.zeros(OBS), actions, jax.random.PRNGKey(key))


def member_from_increments(res):
    inc = np.diff(np.asarray(res.trajectories[..., 0]), axis=-1)  # [N, P, H]
    return np.rint(inc).astype(int) - 1


def test_tsinf_keeps_members_and_ts1_redraws():
    model, st = constant_model(num_members=4)
    n, p, h = 5, 8, 6
    tsinf = run(
        model, st, PropagationConfig("tsinf", p, sample_noise=False), n, h, reward_fn=reward_x0
    )
    ts1 = run(model, st, PropagationConfig("ts1", p, sample_noise=False), n, h, reward_fn=reward_x0)
    for res in (tsinf, ts1):
        chex.assert_shape(res.values, (n,))
        chex.assert_shape(res.particle_returns, (n, p))
        chex.assert_shape(res.trajectories, (n, p, h + 1, OBS))
        chex.assert_shape(res.members, (n, p, h))
        mem = np.asarray(res.members)
        # The reported member index is the one whose dynamics moved the particle.
        np.testing.assert_array_equal(member_from_increments(res), mem)
        # Every step, each candidate sends exactly P / E particles through each member.
        for e in range(4):
            np.testing.assert_array_equal((mem == e).sum(axis=1), 2)
        # Return of a particle = sum_t x0_t with x0_t the cumulative sum of its increments.
        expected = np.cumsum(mem + 1, axis=-1).sum(-1)
        np.testing.assert_allclose(res.particle_returns, expected, rtol=1e-6)
    tsinf_mem = np.asarray(tsinf.members)
    assert (tsinf_mem == tsinf_mem[..., :1]).all()  # one member for the whole horizon
    ts1_mem = np.asarray(ts1.members)
    switched = (ts1_mem != ts1_mem[..., :1]).any(axis=-1)
    assert switched.mean() > 0.8  # P(no switch in 5 redraws) = (1/4)^5 per particle
    # Redraws are independent across candidates, not a shared pattern.
    assert not (ts1_mem == ts1_mem[:1]).all()


def test_random_model_one_member_per_candidate_balanced():
    model, st = constant_model(num_members=4)
    n = 10
    res = run(
        model,
        st,
        PropagationConfig("random_model", 3, sample_noise=False),
        n,
        5,
        reward_fn=reward_x0,
    )
    mem = np.asarray(res.members)
    np.testing.assert_array_equal(member_from_increments(res), mem)
    assert (mem == mem[:, :1, :1]).all()  # all particles, all steps
    counts = np.bincount(mem[:, 0, 0], minlength=4)
    assert counts.max() <= 3 and counts.sum() == n  # ceil(10 / 4) slots per member
    # Different keys give different draws.
    res2 = run(
        model,
        st,
        PropagationConfig("random_model", 3, sample_noise=False),
        n,
        5,
        key=7,
        reward_fn=reward_x0,
    )
    assert not np.array_equal(np.asarray(res2.members), mem)


@pytest.mark.parametrize("mode", ["ts1", "tsinf", "random_model"])
def test_elites_only_uses_only_elites(mode):
    model, st = constant_model(num_members=5, num_elites=2)
    st = st.replace(elites=jnp.array([4, 1], jnp.int32))
    res = run(
        model,
        st,
        PropagationConfig(mode, 4, elites_only=True, sample_noise=False),
        reward_fn=reward_x0,
    )
    mem = np.asarray(res.members)
    assert set(np.unique(mem)) <= {1, 4}
    np.testing.assert_array_equal(member_from_increments(res), mem)


def test_learned_reward_head_is_used():
    model, st = constant_model(num_members=4, reward_per_member=[1.0, 2.0, 3.0, 4.0])
    res = run(model, st, PropagationConfig("tsinf", 8, sample_noise=False), horizon=6)
    np.testing.assert_allclose(res.particle_returns, 6.0 * (np.asarray(res.members[..., 0]) + 1))


def random_nonlinear_model(probabilistic=False, num_members=3):
    cfg = EnsembleConfig(
        ensemble_size=num_members, hidden_sizes=(32, 32), probabilistic=probabilistic
    )
    model = make_ensemble(cfg, OBS, ACT)
    st = model.init(jax.random.PRNGKey(3))
    # Non-trivial normalizers so that normalization mistakes change the answer.
    norm = st.normalizer
    norm = norm.replace(
        inputs=norm.inputs.replace(mean=jnp.full((5,), 0.3), std=jnp.full((5,), 2.0)),
        targets=norm.targets.replace(mean=jnp.array([0.1, -0.2, 0.05]), std=jnp.full((3,), 0.5)),
    )
    return model, st.replace(normalizer=norm)


def reward_quadratic(obs, action, next_obs):
    return -jnp.sum(next_obs**2) - 0.1 * jnp.sum(action**2)


def test_expectation_equals_propagating_the_mean():
    model, st = random_nonlinear_model()
    n, h = 4, 5
    res = run(model, st, PropagationConfig("expectation", 6), n, h, reward_fn=reward_quadratic)
    chex.assert_shape(res.particle_returns, (n, 1))
    chex.assert_shape(res.trajectories, (n, 1, h + 1, OBS))
    actions = jax.random.uniform(jax.random.PRNGKey(42), (n, h, ACT), minval=-1, maxval=1)
    for i in range(n):
        x, ret = jnp.zeros(OBS), 0.0
        for t in range(h):
            nxt = model.predict(st, x, actions[i, t]).next_obs_mean.mean(0)  # mean over members
            ret += float(reward_quadratic(x, actions[i, t], nxt))
            np.testing.assert_allclose(res.trajectories[i, 0, t + 1], nxt, rtol=1e-5, atol=1e-5)
            x = nxt
        np.testing.assert_allclose(res.values[i], ret, rtol=1e-4)


@pytest.mark.parametrize("mode", ["tsinf", "ts1", "random_model"])
def test_particles_follow_their_members_nonlinear(mode):
    """Each particle step equals that member's own prediction (catches grouping/layout bugs)."""
    model, st = random_nonlinear_model()
    n, h = 4, 4
    res = run(
        model, st, PropagationConfig(mode, 6, sample_noise=False), n, h, reward_fn=reward_quadratic
    )
    actions = jax.random.uniform(jax.random.PRNGKey(42), (n, h, ACT), minval=-1, maxval=1)
    traj, mem = np.asarray(res.trajectories), np.asarray(res.members)
    all_next = model.predict(
        st, jnp.asarray(traj[:, :, :-1]), jnp.broadcast_to(actions[:, None], (n, 6, h, ACT))
    ).next_obs_mean  # [E, N, P, H, obs]
    chosen = np.take_along_axis(np.asarray(all_next), mem[None, ..., None], axis=0)[0]
    np.testing.assert_allclose(traj[:, :, 1:], chosen, rtol=1e-4, atol=1e-5)
    rewards = jax.vmap(jax.vmap(jax.vmap(reward_quadratic)))(
        jnp.asarray(traj[:, :, :-1]),
        jnp.broadcast_to(actions[:, None], (n, 6, h, ACT)),
        jnp.asarray(traj[:, :, 1:]),
    )
    np.testing.assert_allclose(res.particle_returns, rewards.sum(-1), rtol=1e-5)


def test_aleatoric_noise_has_the_model_std():
    sigma = 0.2
    model, st = constant_model(num_members=2, sigma=sigma)
    n, p, h = 50, 200, 4
    res = run(model, st, PropagationConfig("tsinf", p), n, h, reward_fn=reward_x0)
    final = np.asarray(res.trajectories[:, :, -1, :])  # [N, P, obs]
    mem = np.asarray(res.members[:, :, 0])
    for e in range(2):
        x = final[mem == e]
        # x_H = x_0 + H * (e + 1) + sum of H N(0, sigma^2) draws.
        np.testing.assert_allclose(x[:, 0].mean(), h * (e + 1), atol=0.03)
        np.testing.assert_allclose(x.std(axis=0), np.sqrt(h) * sigma, rtol=0.05)
    det = run(
        model, st, PropagationConfig("tsinf", p, sample_noise=False), n, h, reward_fn=reward_x0
    )
    assert float(jnp.std(det.trajectories[:, :, -1, 1])) == 0.0


@pytest.mark.parametrize("mode", ["ts1", "tsinf", "random_model"])
def test_predrawn_noise_equals_per_step_keys(mode):
    """The ensemble declares `noise_size`, so propagate draws a horizon's noise before its loop;
    the same model without it (a protocol-only wrapper) gets the step keys and draws per step:
    same numbers, same trajectories and members."""
    model, st = random_nonlinear_model(probabilistic=True)
    # std well above rounding: the bounds put logvar in (min, max) = (-10, 0.5)
    st = st.replace(params={**st.params, "min_logvar": st.params["min_logvar"] + 8.0})
    keys_only = type("KeysOnly", (), {k: getattr(model, k) for k in (
        "state_size", "action_size", "num_members", "num_elites", "has_reward",
        "has_termination", "init", "fit", "step", "elites")})()
    assert model.noise_size > 0 and not hasattr(keys_only, "noise_size")
    cfg = PropagationConfig(mode, 6)
    a = run(model, st, cfg, 4, 5, reward_fn=reward_quadratic)
    b = run(keys_only, st, cfg, 4, 5, reward_fn=reward_quadratic)
    np.testing.assert_array_equal(a.members, b.members)
    np.testing.assert_allclose(a.trajectories, b.trajectories, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(a.values, b.values, rtol=1e-5, atol=1e-6)
    assert float(jnp.std(a.trajectories[:, :, -1])) > 1e-3  # the noise is really there


def test_risk_aggregations():
    rng = np.random.default_rng(0)
    r = rng.normal(size=(6, 8)).astype(np.float32)
    np.testing.assert_allclose(aggregate_returns(jnp.asarray(r), "mean"), r.mean(1), rtol=1e-6)
    np.testing.assert_allclose(
        aggregate_returns(jnp.asarray(r), "mean_std", k=1.5),
        r.mean(1) - 1.5 * r.std(1),
        rtol=1e-5,
    )
    # CVaR at 25% of 8 particles: mean of the 2 lowest returns.
    np.testing.assert_allclose(
        aggregate_returns(jnp.asarray(r), "cvar", alpha=0.25),
        np.sort(r, axis=1)[:, :2].mean(1),
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        aggregate_returns(jnp.asarray(r), "cvar", alpha=0.3),
        np.sort(r, axis=1)[:, :3].mean(1),
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        aggregate_returns(jnp.asarray(r), "cvar", alpha=1.0), r.mean(1), rtol=1e-6
    )
    # Through propagate: values are the aggregation of the particle returns.
    model, st = constant_model(num_members=2, sigma=0.5)
    cfg = PropagationConfig("ts1", 8, risk="cvar", cvar_alpha=0.25)
    res = run(model, st, cfg, reward_fn=reward_x0)
    np.testing.assert_allclose(
        res.values, np.sort(np.asarray(res.particle_returns), 1)[:, :2].mean(1), rtol=1e-5
    )
    cfg = PropagationConfig("tsinf", 8, risk="mean_std", risk_k=2.0)
    res = run(model, st, cfg, reward_fn=reward_x0)
    pr = np.asarray(res.particle_returns)
    np.testing.assert_allclose(res.values, pr.mean(1) - 2.0 * pr.std(1), rtol=1e-4)


def test_termination_masks_later_rewards_and_discount():
    model, st = constant_model(num_members=1)

    def one(obs, action, next_obs):
        return jnp.ones(())

    def done_at_3(obs, action, next_obs):
        return next_obs[0] >= 3.0

    # x0 goes 1, 2, 3, ...: the transition reaching 3 terminates; it is counted, later ones not.
    res = run(
        model,
        st,
        PropagationConfig("tsinf", 2, sample_noise=False),
        horizon=6,
        reward_fn=one,
        termination_fn=done_at_3,
    )
    np.testing.assert_allclose(res.particle_returns, 3.0)
    res = run(
        model,
        st,
        PropagationConfig("ts1", 2, discount=0.9, sample_noise=False),
        horizon=6,
        reward_fn=one,
        termination_fn=done_at_3,
    )
    np.testing.assert_allclose(res.particle_returns, 1 + 0.9 + 0.81, rtol=1e-6)
    # A learned termination head is soft: survival shrinks by (1 - p) per step.
    model, st = constant_model(num_members=2, termination_prob=0.25)
    res = run(model, st, PropagationConfig("expectation"), horizon=4, reward_fn=one)
    np.testing.assert_allclose(res.values, sum(0.75**t for t in range(4)), rtol=1e-5)


def test_validation_errors():
    model, _ = constant_model(num_members=4, num_elites=3)
    with pytest.raises(ValueError, match="num_particles=6 must be a multiple"):
        make_model_objective(model, PropagationConfig("tsinf", 6), reward_fn=reward_x0)
    with pytest.raises(ValueError, match="multiple of the 3 members"):
        make_model_objective(model, PropagationConfig("ts1", 4, elites_only=True), reward_x0)
    make_model_objective(model, PropagationConfig("random_model", 6), reward_fn=reward_x0)
    with pytest.raises(ValueError, match="no reward"):
        make_model_objective(model, PropagationConfig("tsinf", 4))
    for field, value in [
        ("mode", "ts2"),
        ("num_particles", 0),
        ("risk", "max"),
        ("risk_k", -1.0),
        ("cvar_alpha", 0.0),
        ("discount", 1.5),
    ]:
        with pytest.raises(ValueError, match=field):
            PropagationConfig(**{field: value})
    _, st = constant_model(num_members=4)
    with pytest.raises(ValueError, match="actions must be"):
        propagate(
            model,
            PropagationConfig("tsinf", 4),
            st,
            jnp.zeros(OBS),
            jnp.zeros((5, 3)),
            jax.random.PRNGKey(0),
            reward_fn=reward_x0,
        )


def test_objective_no_retrace_and_vmaps_over_envs():
    model, st = random_nonlinear_model(probabilistic=True)
    objective_for = make_model_objective(
        model, PropagationConfig("tsinf", 6), reward_fn=reward_quadratic
    )
    traces = [0]

    def evaluate(state, obs, key, actions):
        traces[0] += 1
        return objective_for(state, obs, key)(actions)

    f = jax.jit(evaluate)
    actions = jax.random.uniform(jax.random.PRNGKey(1), (7, 5, ACT), minval=-1, maxval=1)
    outs = []
    for i in range(3):
        st_i = st.replace(
            params=jax.tree_util.tree_map(lambda p, i=i: p * (1 + 0.1 * i), st.params)
        )
        out = f(st_i, jnp.full((OBS,), 0.1 * i), jax.random.PRNGKey(i), actions)
        chex.assert_shape(out, (7,))
        outs.append(out)
    assert traces[0] == 1
    assert not np.allclose(outs[0], outs[1])
    # A batch of B envs: vmap over obs and keys, no code change.
    obs_b = jax.random.normal(jax.random.PRNGKey(5), (3, OBS))
    keys = jax.random.split(jax.random.PRNGKey(6), 3)
    batched = jax.jit(jax.vmap(lambda o, k: objective_for(st, o, k)(actions)))(obs_b, keys)
    chex.assert_shape(batched, (3, 7))
    for b in range(3):
        np.testing.assert_allclose(batched[b], f(st, obs_b[b], keys[b], actions), rtol=2e-5)
