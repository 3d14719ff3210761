"""An ensemble distilled into one network: it reproduces the ensemble's total mean and variance
(aleatoric + epistemic) and plans in PETS as a one-member model."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from mbjax import acting, envs, replay
from mbjax.models import EnsembleConfig, check_model, make_ensemble
from mbjax.models.distilled import DistillConfig, make_distilled, teacher_moments


def _random_buffer(env_name: str, n: int = 512) -> replay.ReplayBuffer:
    env = envs.make(env_name)
    batch = acting.reset_batch(env, jax.random.key(0), 16)
    buffer = replay.init(n, acting.empty_transition(env.observation_size, env.action_size))

    def body(carry, k):
        envs_, buf = carry
        k_a, k_r = jax.random.split(k)
        envs_, trans = acting.step_batch(env, envs_, acting.random_actions(
            k_a, (16, env.action_size)), k_r)
        return (envs_, replay.add(buf, trans)), None

    (_, buffer), _ = jax.lax.scan(body, (batch, buffer), jax.random.split(jax.random.key(1),
                                                                          n // 16))
    return buffer


def test_student_matches_the_teachers_total_moments():
    buffer = _random_buffer("pendulum_swingup")
    teacher = make_ensemble(EnsembleConfig(ensemble_size=4, num_elites=3, hidden_sizes=(32, 32),
                                           max_epochs=30, patience=None), 3, 1)
    model = make_distilled(teacher, DistillConfig(hidden_sizes=(64, 64), fit_steps=1500,
                                                  learning_rate=3e-3, batch_size=128))
    check_model(model, deep=True)
    state, metrics = jax.jit(model.fit)(model.init(jax.random.key(2)), buffer,
                                        jax.random.key(3))
    assert not bool(metrics["nonfinite"])
    obs, action = buffer.data.obs[:256], buffer.data.action[:256]
    mean_t, var_t, _ = teacher_moments(teacher, state.teacher, obs, action)
    pred = model.student.apply(state.student.params, state.student.normalizer, obs, action)
    # Normalized units: the targets have unit variance over the data.
    assert float(jnp.mean((pred.mean[0] - mean_t) ** 2)) < 0.02
    log_err = jnp.abs(pred.logvar[0] - jnp.log(var_t))
    assert float(jnp.median(log_err)) < 0.3
    # The epistemic part is in the target: the total exceeds the members' mean aleatoric.
    pred_t = teacher.apply(state.teacher.params, state.teacher.normalizer, obs, action)
    elites = teacher.elites(state.teacher)
    assert bool(jnp.all(var_t >= jnp.mean(jnp.exp(pred_t.logvar[elites]), axis=0) - 1e-6))

    # One member: a step is the student's prediction; PETS plans with it.
    out = model.step(state, obs[None, :4], action[None, :4], None, None)
    assert out.next_obs.shape == (1, 4, 3)


def test_pets_plans_with_a_distilled_ensemble():
    from mbjax.agents import pets
    from mbjax.agents.program import make_pure_train

    config = pets.preset("point_mass", "test")
    teacher = make_ensemble(EnsembleConfig(ensemble_size=2, hidden_sizes=(16,), max_epochs=5,
                                           patience=None), 2, 1)
    model = make_distilled(teacher, DistillConfig(fit_steps=20, batch_size=32))
    program = pets.make_program(config, pets.make_pets(config, model=model))
    _, metrics = jax.jit(make_pure_train(program))(jax.random.key(0))
    assert np.all(np.isfinite(np.asarray(metrics.episode_return)))
