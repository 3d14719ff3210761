"""Dyna-Q / Dyna-Q+ and the discrete mazes (issue 17 items 1-2)."""

import dataclasses
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mbjax import envs
from mbjax.agents import dyna_q
from mbjax.agents.program import make_pure_train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _walk(env, actions):
    state = env.reset(jax.random.PRNGKey(0))
    out = []
    for a in actions:
        state = env.step(state, jnp.int32(a))
        out.append((divmod(int(state.obs), env.shape[1]), float(state.reward), float(state.done)))
    return out


def test_maze_moves_walls_and_goal_exact():
    env = envs.make("maze/dyna")
    assert (env.num_states, env.num_actions) == (54, 4)
    # start (2, 0): up, up, up (edge), right, right, down (wall at (1, 2))
    got = [p for p, _, _ in _walk(env, [0, 0, 0, 3, 3, 1])]
    assert got == [(1, 0), (0, 0), (0, 0), (0, 1), (0, 2), (0, 2)]
    # the 14-step shortest path: down 2, right 4, up 1, right 4, up 3
    path = _walk(env, [1, 1, 3, 3, 3, 3, 0, 3, 3, 3, 3, 0, 0, 0])
    assert path[-1] == ((0, 8), 1.0, 1.0) and all(r == 0 for _, r, _ in path[:-1])
    with pytest.raises(ValueError, match="action.shape"):
        env.step(env.reset(jax.random.PRNGKey(0)), jnp.zeros(1, jnp.int32))


def test_changing_maze_keeps_its_clock_and_user_layouts():
    env = envs.make("maze/dyna", layout="S.#/..G", layout_after="S../..G", change_step=2)
    state = env.reset(jax.random.PRNGKey(0))
    state = env.step(state, jnp.int32(3))  # (0, 1), t = 1
    state = env.step(state, jnp.int32(3))  # wall at (0, 2) still there at t = 1
    assert int(state.obs) == 1
    state = env.restart(state, jax.random.PRNGKey(1))  # new episode, same world: t = 2
    state = env.step(env.step(state, jnp.int32(3)), jnp.int32(3))
    assert int(state.obs) == 2  # the wall is gone
    with pytest.raises(ValueError, match="layout"):
        envs.make("maze/dyna", layout="S.X/..G")


def test_model_counts_and_transitions_are_exact():
    model = dyna_q.empty_model(6, 4)
    seq = [(0, 1, 0.0, 3, False), (3, 2, 0.0, 3, False), (0, 1, 0.0, 3, False),
           (3, 3, 1.0, 5, True)]
    for t, (s, a, r, s2, term) in enumerate(seq, start=1):
        model = dyna_q.record(model, s, a, r, s2, term, t)
    count = np.zeros((6, 4), int)
    count[0, 1], count[3, 2], count[3, 3] = 2, 1, 1
    np.testing.assert_array_equal(model.count, count)
    assert int(model.next_state[0, 1]) == 3 and int(model.next_state[3, 3]) == 5
    assert float(model.reward[3, 3]) == 1.0 and bool(model.terminal[3, 3])
    assert int(model.last_tried[0, 1]) == 3 and int(model.num_pairs) == 3
    assert sorted(np.asarray(model.pairs[:3]).tolist()) == [1, 14, 15]
    assert sorted(np.asarray(model.states[: int(model.num_seen)]).tolist()) == [0, 3]


def test_dyna_q_plus_bonus_is_kappa_sqrt_tau():
    model = dyna_q.record(dyna_q.empty_model(2, 2), 0, 1, 0.0, 1, False, 3)
    b = np.asarray(dyna_q.bonus(model, jnp.float32(0.01), jnp.int32(12)))
    np.testing.assert_allclose(b, 0.01 * np.sqrt([[12, 9], [12, 12]]), rtol=1e-6)
    # Dyna-Q+ plans untried actions of seen states as "stay, reward 0" (+ bonus).
    for i in range(20):
        s, a, r, s2, term = dyna_q.planning_transition(model, True, jnp.float32(0.01),
                                                       jnp.int32(12), jax.random.PRNGKey(i))
        assert int(s) == 0 and not bool(term)
        want_next, tau = (1, 9) if int(a) == 1 else (0, 12)
        assert int(s2) == want_next
        np.testing.assert_allclose(float(r), 0.01 * np.sqrt(tau), rtol=1e-6)


def _train(n, episodes=12, runs=8, seed=0):
    config = dataclasses.replace(dyna_q.preset("maze/dyna", "cpu"), planning_steps=n,
                                 episodes=episodes)
    train = make_pure_train(dyna_q.make_program(config))
    keys = jax.random.split(jax.random.PRNGKey(seed), runs)
    return train, keys, jax.jit(jax.vmap(train))(keys)


def test_reproducible_vmapped_equals_single_and_planning_helps():
    train, keys, (_, m50) = _train(50)
    _, _, (_, again) = _train(50)
    np.testing.assert_array_equal(m50.episode_length, again.episode_length)
    _, single = jax.jit(train)(keys[3])
    np.testing.assert_array_equal(single.episode_length, m50.episode_length[3])
    _, _, (_, m0) = _train(0)
    late50 = float(np.mean(m50.episode_length[:, 2:8]))
    late0 = float(np.mean(m0.episode_length[:, 2:8]))
    assert late50 < 30 and late0 > 3 * late50, (late0, late50)
    assert int(m50.env_steps[0, -1]) == int(np.sum(m50.episode_length[0]))
    assert not np.any(m50.nonfinite)


def test_grid_leaves_and_bad_envs():
    config = dyna_q.preset("maze/dyna", "test")
    assert set(dyna_q.grid_leaves(config)) == {"alpha", "epsilon", "gamma", "kappa"}
    with pytest.raises(ValueError, match="point_mass has continuous actions; dyna_q needs"):
        dyna_q.make_program(dataclasses.replace(config, env="point_mass"))
    with pytest.raises(ValueError, match="no finite state set"):
        dyna_q.make_program(dataclasses.replace(config, env="cartpole_discrete"))
    with pytest.raises(ValueError, match="alpha=0.0 is invalid"):
        dataclasses.replace(config, alpha=0.0)


def test_cartpole_discrete_two_actions():
    env = envs.make("cartpole_discrete")
    assert env.num_actions == 2 and env.episode_length == 500
    state = env.reset(jax.random.PRNGKey(0))
    for _ in range(200):
        state = env.step(state, jnp.int32(1))
        if float(state.done):
            break
    assert float(state.done) == 1.0 and float(state.info["truncation"]) == 0.0
    with pytest.raises(ValueError, match="discrete actions"):
        _ = env.action_size


def test_train_cli_end_to_end(tmp_path):
    out = str(tmp_path / "run")
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.train", "--algo=dyna_q", "--env=maze/dyna",
         "--preset=test", "--quiet", f"--output_dir={out}"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert os.path.exists(os.path.join(out, "metrics.jsonl"))


def test_interrupted_and_resumed_run_equals_uninterrupted(tmp_path):
    from resume_check import assert_resume_matches

    config = dyna_q.preset("maze/dyna", "test")
    _, _, full = dyna_q.train("maze/dyna", config, seed=3)
    assert len(full) >= 3
    assert_resume_matches(dyna_q.train, full, str(tmp_path / "ck"), 2, env="maze/dyna",
                          config=config, seed=3)
