"""mbjax.acting: transitions, auto-reset batches, masked episodes and evaluation."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np

import mbjax.envs as envs
from mbjax import acting
from mbjax.envs.base import Env, State
from mbjax.envs.wrappers import EpisodeWrapper


class PointMass(Env):
    """1-D point mass: obs (x, v), force in [-1, 1], reward exp(-2 x^2), terminates at |x| > 2.

    Starts uniform in [-1, 1]^2, so under EpisodeWrapper episodes end both by termination and by
    the time limit.
    """

    dt = 0.1
    observation_size = 2
    action_size = 1

    def reset(self, rng):
        obs = jax.random.uniform(rng, (2,), minval=-1.0, maxval=1.0)
        return State(pipeline_state=None, obs=obs, reward=jnp.zeros(()), done=jnp.zeros(()))

    def step(self, state, action):
        x, v = state.obs
        v = v + self.dt * 2.0 * action[0]
        x = x + self.dt * v
        return state.replace(obs=jnp.stack([x, v]), reward=jnp.exp(-2.0 * x**2),
                             done=(jnp.abs(x) > 2.0).astype(jnp.float32))


class Countdown(Env):
    """obs = (steps left, id): starts with 1..4 steps left (from the reset key), reward 1 per
    step, terminates when none are left; stepped past its end it returns NaN."""

    observation_size = 2
    action_size = 1

    def reset(self, rng):
        k_left, k_id = jax.random.split(rng)
        left = jax.random.randint(k_left, (), 1, 5).astype(jnp.float32)
        obs = jnp.stack([left, jax.random.uniform(k_id)])
        return State(pipeline_state=None, obs=obs, reward=jnp.zeros(()), done=jnp.zeros(()))

    def step(self, state, action):
        del action
        left = state.obs[0] - 1.0
        past_end = ~(left >= 0)  # also once NaN
        nan_or = lambda x: jnp.where(past_end, jnp.nan, x)
        return state.replace(
            obs=nan_or(state.obs.at[0].set(left)), reward=nan_or(jnp.ones(())),
            done=(left <= 0).astype(jnp.float32),
        )


def test_transitions_keep_termination_and_truncation_apart_and_store_true_next_obs():
    env = EpisodeWrapper(PointMass(), episode_length=25)
    num_envs, steps = 4, 200

    @jax.jit
    def run(key):
        k_reset, k_run = jax.random.split(key)

        def one(batch, k):
            k_act, k_reset = jax.random.split(k)
            action = acting.random_actions(k_act, (num_envs, 1))
            return acting.step_batch(env, batch, action, k_reset)

        batch = acting.reset_batch(env, k_reset, num_envs)
        return jax.lax.scan(one, batch, jax.random.split(k_run, steps))

    _, t = run(jax.random.key(0))
    t = jax.tree_util.tree_map(np.asarray, t)  # leaves [T, B, ...]
    x, v = t.obs[..., 0], t.obs[..., 1]
    v_next = v + 0.2 * t.action[..., 0]
    # Every next_obs follows the dynamics, including at episode ends (never a reset obs).
    np.testing.assert_allclose(t.next_obs[..., 1], v_next, atol=1e-5)
    np.testing.assert_allclose(t.next_obs[..., 0], x + 0.1 * v_next, atol=1e-5)
    terminal = (np.abs(t.next_obs[..., 0]) > 2.0).astype(np.float32)
    np.testing.assert_array_equal(t.terminated, terminal)
    assert 0 < terminal.sum() and t.truncated.sum() > 0
    assert not np.any(t.terminated * t.truncated)
    # Truncation exactly where an episode reached 25 steps without terminating (a termination
    # on the 25th step is a termination).
    ends = t.terminated + t.truncated
    for b in range(num_envs):
        start = 0
        for step in np.flatnonzero(ends[:, b]):
            length = step - start + 1
            assert length <= 25
            assert t.truncated[step, b] == (length == 25 and not t.terminated[step, b])
            start = step + 1
    # After each end the env restarts from a reset observation in [-1, 1]^2.
    restarted = t.obs[1:][ends[:-1] > 0]
    assert len(restarted) and np.all(np.abs(restarted) <= 1.0)
    cont = ends[:-1] == 0
    np.testing.assert_allclose(t.obs[1:][cont], t.next_obs[:-1][cont], atol=1e-6)


def test_real_env_truncates_at_its_time_limit_and_a_bare_env_never_truncates():
    env = envs.make("point_mass", episode_length=5)
    state = env.reset(jax.random.key(0))
    flags = []
    for _ in range(5):
        state, t = acting.step(env, state, jnp.zeros((1,)))
        flags.append((float(t.terminated), float(t.truncated)))
    assert flags == [(0.0, 0.0)] * 4 + [(0.0, 1.0)]
    # Without info["truncation"] every done is a termination.
    bare = Countdown()
    state = bare.reset(jax.random.key(1))
    while True:
        state, t = acting.step(bare, state, jnp.zeros((1,)))
        if float(state.done):
            break
    assert float(t.terminated) == 1.0 and float(t.truncated) == 0.0


def test_auto_reset_resets_exactly_the_finished_envs_with_fresh_keys():
    env, num_envs = Countdown(), 16
    batch = acting.reset_batch(env, jax.random.key(0), num_envs)
    left0 = np.asarray(batch.state.obs[:, 0])
    assert set(left0.tolist()) > {1.0}  # some envs finish now, others later
    step = jax.jit(lambda b, k: acting.step_batch(env, b, jnp.zeros((num_envs, 1)), k))
    key = jax.random.key(7)
    new, t = step(batch, key)
    finished = left0 == 1.0
    fresh = jax.vmap(env.reset)(jax.random.split(key, num_envs))
    obs = np.asarray(new.state.obs)
    np.testing.assert_array_equal(obs[finished], np.asarray(fresh.obs)[finished])
    np.testing.assert_array_equal(obs[~finished, 0], left0[~finished] - 1.0)
    np.testing.assert_array_equal(obs[~finished, 1], np.asarray(batch.state.obs)[~finished, 1])
    # The transitions hold the true last observation, not the reset one.
    np.testing.assert_array_equal(np.asarray(t.next_obs[:, 0]), left0 - 1.0)
    np.testing.assert_array_equal(np.asarray(t.terminated), finished.astype(np.float32))
    # Returns: finished envs report their episode's return and start again from 0.
    np.testing.assert_array_equal(np.asarray(new.episode_return), np.where(finished, 0.0, 1.0))
    np.testing.assert_array_equal(np.isnan(np.asarray(new.last_return)), ~finished)
    np.testing.assert_array_equal(np.asarray(new.last_return)[finished], 1.0)
    assert float(acting.mean_last_return(new)) == 1.0
    assert np.isnan(float(acting.mean_last_return(batch)))
    # Nobody finished: the reset is skipped and nothing changes but the step.
    nobody = acting.reset_batch(env, jax.random.key(0), num_envs)._replace(
        state=batch.state.replace(obs=batch.state.obs.at[:, 0].set(4.0))
    )
    again, _ = step(nobody, key)
    np.testing.assert_array_equal(np.asarray(again.state.obs[:, 0]), 3.0)


def test_masked_episode_ignores_steps_after_termination_even_if_they_are_nan():
    env = Countdown()
    episode = acting.start_episode(env, jax.random.key(3))
    left = int(episode.state.obs[0])
    run = jax.jit(lambda ep: jax.lax.scan(
        lambda e, a: acting.episode_step(env, e, a), ep, jnp.zeros((8, 1))
    ))
    episode, steps = run(episode)
    np.testing.assert_array_equal(steps.valid, [1.0] * left + [0.0] * (8 - left))
    assert np.isnan(np.asarray(steps.transition.reward)[left + 1:]).all()  # the env went NaN
    assert float(episode.episode_return) == left and float(episode.length) == left
    assert float(episode.alive) == 0.0
    np.testing.assert_array_equal(steps.transition.terminated[:left], [0.0] * (left - 1) + [1.0])
    # vmapped over episodes: each one's own length.
    keys = jax.random.split(jax.random.key(4), 6)
    eps = jax.vmap(lambda k: acting.start_episode(env, k))(keys)
    eps, _ = jax.vmap(run)(eps)
    np.testing.assert_array_equal(eps.episode_return, eps.length)
    assert np.all(np.isfinite(np.asarray(eps.episode_return)))


def test_evaluate_equals_a_hand_loop():
    env = envs.make("point_mass", episode_length=20)
    params = jnp.array([[-1.5, -0.8]])  # a linear controller: action = clip(params @ obs)

    def act_fn(p, obs, key):
        del key
        return jnp.clip(obs @ p.T, -1.0, 1.0)

    key = jax.random.key(11)
    returns = jax.jit(
        chex.assert_max_traces(lambda p, k: acting.evaluate(env, act_fn, p, k, 3, 20), n=1)
    )(params, key)
    expected = []
    for k in jax.random.split(key, 3):
        state, total = env.reset(k), 0.0
        for _ in range(20):
            state = env.step(state, act_fn(params, state.obs[None], key)[0])
            total += float(state.reward)
            if float(state.done):
                break
        expected.append(total)
    np.testing.assert_allclose(returns, expected, rtol=1e-5)
    assert returns.shape == (3,) and len(set(np.round(expected, 4))) == 3


def test_policy_return_runs_a_carry_based_policy_like_a_hand_loop():
    env = envs.make("point_mass", episode_length=20)
    gain = jnp.array([[-1.5, -0.8]])
    init_carry = lambda key: jnp.zeros((), jnp.int32)  # counts the policy's calls

    def policy(carry, obs, key):
        return carry + 1, jnp.clip(obs @ gain[0], -1.0, 1.0)[None], {}

    key = jax.random.key(2)
    got = jax.jit(lambda k: acting.policy_return(env, init_carry, policy, k, 30))(key)
    state, total = env.reset(jax.random.split(key, 3)[0]), 0.0
    for _ in range(20):  # the episode ends at its time limit; the 10 steps after add nothing
        state = env.step(state, policy(0, state.obs, None)[1])
        total += float(state.reward)
    np.testing.assert_allclose(got, total, rtol=1e-5)
