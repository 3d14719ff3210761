"""DAgger distillation: the student learns an analytic teacher, the beta schedule mixes the
executed actions, and a real PETS run is distilled through the CLI (with an exact resume)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mbjax import envs
from mbjax.agents import distill
from mbjax.agents.distill import dagger as dtrain
from mbjax.agents.sac.networks import MLP

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _linear_teacher(env):
    w = jax.random.normal(jax.random.key(0), (env.observation_size, env.action_size))
    return (lambda key: (), lambda carry, obs, key: (carry, jnp.tanh(obs @ w), {})), w


def _parts(env, teacher):
    return dtrain.Parts(env=env, teacher=teacher, student=MLP((32,), env.action_size),
                        optimizer=optax.inject_hyperparams(optax.adam)(learning_rate=3e-3),
                        num_steps=50)


def test_student_learns_an_analytic_teacher_and_beta_mixes_the_actions():
    env = envs.make("point_mass", episode_length=50)
    teacher, w = _linear_teacher(env)
    parts = _parts(env, teacher)
    config = dataclasses.replace(distill.preset("point_mass", "test"), episode_length=50,
                                 iterations=3, episodes_per_iteration=2, train_steps=300,
                                 batch_size=64)
    state = dtrain.make_init(parts, config)(jax.random.key(1))
    iteration = jax.jit(dtrain.make_iteration(parts, config))
    betas = []
    for _ in range(3):
        state, m = iteration(state)
        betas.append(float(m.beta))
    assert betas == [1.0, 0.5, 0.25]
    assert int(state.data.size) == 3 * 2 * 50
    # The labels are the teacher's actions at the stored states, and the student matches them
    # on states it never trained on.
    data = state.data.data
    np.testing.assert_allclose(data.action[:10], jnp.tanh(data.obs[:10] @ w), rtol=1e-5)
    fresh, valid, _ = dtrain.collect_episode(parts, state.params, jnp.float32(0.0),
                                             jax.random.key(2))  # the student's own states
    err = dtrain.student_action(parts, state.params, fresh.obs) - fresh.action
    rmse = float(jnp.sqrt(jnp.sum(valid[:, None] * err**2) / jnp.sum(valid)))
    first = dtrain.make_init(parts, config)(jax.random.key(1)).params
    err0 = dtrain.student_action(parts, first, fresh.obs) - fresh.action
    assert rmse < 0.1 and rmse < 0.2 * float(jnp.sqrt(jnp.mean(err0**2))), rmse

    # beta = 1 executes the teacher only, whatever the student: its return is the teacher's.
    key = jax.random.key(3)
    with_trained = dtrain.collect_episode(parts, state.params, jnp.float32(1.0), key)[2]
    untrained = dtrain.make_init(parts, config)(jax.random.key(9)).params
    with_untrained = dtrain.collect_episode(parts, untrained, jnp.float32(1.0), key)[2]
    assert float(with_trained) == float(with_untrained)


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("teacher") / "pets")
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.train", "--algo=pets", "--env=point_mass",
         "--preset=test", "--config.num_episodes=2", "--quiet", f"--output_dir={out}"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


def test_distills_a_pets_run_from_the_cli_and_resumes_exactly(teacher_run, tmp_path):
    from resume_check import assert_resume_matches

    out = str(tmp_path / "student")
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.train", "--algo=distill", "--env=point_mass",
         "--preset=test", f"--config.teacher_run={teacher_run}", "--quiet",
         f"--output_dir={out}"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with open(os.path.join(out, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f if line.strip()]
    assert [r["beta"] for r in records] == [1.0, 0.5]
    assert records[1]["dataset_size"] > records[0]["dataset_size"] > 0

    config = dataclasses.replace(distill.preset("point_mass", "test"), teacher_run=teacher_run)
    _, _, full = distill.train("point_mass", config, seed=2)
    assert_resume_matches(distill.train, full, str(tmp_path / "ck"), 1, env="point_mass",
                          config=config, seed=2)

    with pytest.raises(ValueError, match="a run on env 'pendulum_swingup'"):
        distill.make_program(dataclasses.replace(config, env="pendulum_swingup"))
