"""MBPO end to end: learning, its SAC loop, vmapped seeds, exact resume, rollouts, config errors."""

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from resume_check import assert_resume_matches

from mbjax import acting, envs, replay
from mbjax.agents import mbpo, sac
from mbjax.agents.program import run_host
from mbjax.models import EnsembleConfig, make_ensemble


def _config(**kw) -> mbpo.Config:
    # A fixed replay capacity keeps the compiled epoch identical for any num_epochs, so tests
    # with fewer epochs hit the compilation cache of the fixture's run.
    return dataclasses.replace(
        mbpo.preset("point_mass", "test"), **{"num_epochs": 6, "replay_capacity": 1000, **kw}
    )


@pytest.fixture(scope="module")
def point_mass_run():
    config = _config()
    make_policy, final_state, records = mbpo.train("point_mass", config, seed=0)
    return config, make_policy, final_state, records


def test_mbpo_solves_point_mass(point_mass_run):
    config, _, _, records = point_mass_run
    returns = [r["episode_return"] for r in records]
    # A random policy scores about -45; reaching x=1 and staying there about -6.
    assert max(returns[-2:]) > -10, returns
    assert np.mean(returns[-3:]) > -13, returns
    assert [r["env_steps"] for r in records] == [300, 400, 500, 600, 700, 800]
    assert [r["epoch"] for r in records] == [r["episode"] for r in records] == list(range(6))
    # Schedule (1, 4, 1, 5): length 1 up to epoch 1, then linear to 5 at epoch 4.
    assert [r["rollout_length"] for r in records] == [1, 1, 2, 3, 5, 5]
    assert all(r["model_holdout_mse"] is not None and r["model_holdout_mse"] < 0.5
               for r in records)
    # Model data was generated and its pool grows with the rollout length.
    sizes = [r["model_buffer_size"] for r in records]
    assert sizes[0] > 0 and sizes[-1] > sizes[0]


def test_make_policy_controls_the_env(point_mass_run):
    config, make_policy, final_state, _ = point_mass_run
    env = mbpo.make_mbpo(config).env
    init_carry, policy = make_policy(final_state)

    episode = jax.jit(lambda k: acting.policy_return(env, init_carry, policy, k, 50))
    assert float(episode(jax.random.PRNGKey(5))) > -15


def test_interrupted_and_resumed_run_equals_uninterrupted(point_mass_run, tmp_path):
    config, _, _, full = point_mass_run

    assert_resume_matches(mbpo.train, full, str(tmp_path / "ck"), 3, env="point_mass",
                          config=config, seed=0)


def test_vmapped_seeds_equal_single_runs():
    # Short and without early stopping: long runs amplify the float rounding differences between
    # batched and unbatched matmuls (measured: equal to ~1e-6 here, a few % after 6 epochs).
    base = mbpo.preset("point_mass", "test")
    config = _config(
        num_epochs=2, steps_per_epoch=50, init_random_steps=100, updates_per_step=1,
        model=dataclasses.replace(base.model, max_epochs=5, patience=None),
    )
    keys = jnp.stack([jax.random.PRNGKey(s) for s in (0, 1)])
    _, batched = jax.jit(jax.vmap(mbpo.make_train(config)))(keys)
    assert batched.episode_return.shape == (2, 2)
    program = mbpo.make_program(config)
    for i, seed in enumerate((0, 1)):
        _, records = run_host(program, seed=seed)  # same epoch function, no vmap
        for name, got in (("episode_return", batched.episode_return[i]),
                          ("model_holdout_mse", batched.extra.holdout_mse[i]),
                          ("model_rollout_reward", batched.extra.rollout_reward[i]),
                          ("critic_loss", batched.sac["critic_loss"][i])):
            # rtol: measured up to 2e-4 on the second epoch's return (float rounding only).
            np.testing.assert_allclose([r[name] for r in records], got, rtol=1e-3, err_msg=name)
    assert not np.allclose(batched.episode_return[0], batched.episode_return[1])


def test_sac_alone_is_the_sac_loop_mbpo_builds_on():
    config = _config(num_envs=2, episode_length=40)
    alone = mbpo.sac_alone(config)
    assert isinstance(alone, sac.Config)
    for name in ("env", "episode_length", "num_epochs", "steps_per_epoch", "num_envs",
                 "init_random_steps", "updates_per_step", "num_eval_episodes",
                 "replay_capacity", "sac"):
        assert getattr(alone, name) == getattr(config, name), name
    assert alone.total_env_steps == config.total_env_steps
    assert mbpo.make_mbpo(config).loop.config == alone
    # The test presets agree, so tests/test_sac.py's learning run is MBPO's "SAC alone".
    assert mbpo.sac_alone(mbpo.preset("point_mass", "test")) == sac.preset("point_mass", "test")


def test_rollout_length_schedule():
    lengths = [int(mbpo.rollout_length(jnp.int32(e), (20, 150, 1, 15))) for e in (0, 20, 85, 150,
                                                                                  400)]
    assert lengths == [1, 1, 8, 15, 15]
    cfg = mbpo.Config(rollout_schedule=(20, 150, 1, 15))
    assert [cfg.rollout_length(e) for e in (0, 20, 85, 150, 400)] == lengths
    # Decreasing schedules work too.
    assert int(mbpo.rollout_length(jnp.int32(5), (0, 10, 9, 1))) == 5


def test_sample_recent_draws_only_from_the_newest_items():
    example = jnp.zeros(())
    buf = replay.init(10, example)
    buf = replay.add(buf, jnp.arange(8.0))
    buf = replay.add(buf, jnp.arange(8.0, 14.0))  # wraps: holds 4..13, newest 13
    draws = mbpo.sample_recent(buf, jax.random.PRNGKey(0), 500, jnp.int32(3))
    assert set(np.asarray(draws).tolist()) == {11.0, 12.0, 13.0}
    draws = mbpo.sample_recent(buf, jax.random.PRNGKey(1), 2000, jnp.int32(100))
    assert set(np.asarray(draws).tolist()) == set(np.arange(4.0, 14.0).tolist())


def test_model_rollout_masks_steps_past_length_and_after_termination_without_retracing():
    cfg = EnsembleConfig(ensemble_size=3, num_elites=2, hidden_sizes=(8,), predict_reward=True,
                         predict_termination=True)
    model = make_ensemble(cfg, 2, 1)
    state = model.init(jax.random.PRNGKey(0))
    act = lambda params, obs, key: jnp.zeros(obs.shape[:-1] + (1,))
    obs0 = jnp.stack([jnp.linspace(-1, 1, 8), jnp.zeros(8)], axis=-1)
    never = lambda o, a, n: jnp.zeros(o.shape[:-1])
    always = lambda o, a, n: jnp.ones(o.shape[:-1])
    for term, expect in ((never, lambda h, length: 8.0 * (h < length)),
                         (always, lambda h, length: 8.0 * (h == 0))):
        chex.clear_trace_counter()  # both rollouts share one code object
        make = mbpo.make_model_rollout(model, act, 5, None, term)
        rollout = jax.jit(chex.assert_max_traces(make, n=1))
        for length in (1, 3, 5):  # a traced length: one trace for all of them
            transitions, valid = rollout(state, None, obs0, jnp.int32(length),
                                         jax.random.PRNGKey(1))
            assert valid.shape == (5, 8) and transitions.obs.shape == (5, 8, 2)
            np.testing.assert_array_equal(
                np.asarray(valid).sum(axis=1), [expect(h, length) for h in range(5)]
            )
            # Rows continue from their own predicted next state (rows are only shuffled).
            np.testing.assert_allclose(
                np.sort(np.asarray(transitions.next_obs[0, :, 0])),
                np.sort(np.asarray(transitions.obs[1, :, 0])), rtol=1e-6,
            )


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"num_epochs": 0}, "num_epochs"),
        ({"steps_per_epoch": 300, "model_train_every": 250}, "steps_per_epoch"),
        ({"rollout_schedule": (5, 5, 1, 2)}, "rollout_schedule"),
        ({"rollout_schedule": (0, 5, 0, 2)}, "rollout_schedule"),
        ({"real_ratio": 1.5}, "real_ratio"),
        ({"real_ratio": 0.001}, "real_ratio"),
        ({"use_estimated_reward": 1}, "use_estimated_reward"),
        ({"rollout_batch_size": 1001}, "rollout_batch_size"),
        ({"num_envs": 3}, "init_random_steps"),
        ({"model": EnsembleConfig(predict_reward=False, predict_termination=True)},
         "learned_reward"),
        ({"updates_per_step": 0}, "updates_per_step"),
    ],
)
def test_bad_config_raises_value_error_naming_the_field(kw, match):
    with pytest.raises(ValueError, match=match):
        mbpo.Config(**kw)


def test_unknown_preset_and_env():
    with pytest.raises(ValueError, match="preset"):
        mbpo.preset("point_mass", "huge")
    with pytest.raises(ValueError, match="Unknown environment"):
        mbpo.make_mbpo(dataclasses.replace(_config(), env="no_such_env"))


def test_known_termination_and_reward_option():
    config = _config(learned_reward=False, learned_termination=False)
    reward_fn, termination_fn = envs.resolve_task(config.env, False, False)
    obs = jnp.array([[0.0, 0.0]])
    nxt = jnp.array([[0.5, 0.0]])
    assert float(reward_fn(obs, jnp.zeros((1, 1)), nxt)[0]) == pytest.approx(-0.25)
    assert float(termination_fn(obs, jnp.zeros((1, 1)), nxt)[0]) == 0.0


@pytest.mark.slow
def test_mbpo_balances_brax_inverted_pendulum():
    # Seed 0 balances (1000) from epoch 10 of 16 on. (The replay capacity follows num_epochs, so
    # a shorter run is a different run, not a prefix: 12 epochs of seed 0 never balanced.)
    config = dataclasses.replace(mbpo.preset("brax/inverted_pendulum", "cpu"), num_epochs=16)
    _, _, records = mbpo.train("brax/inverted_pendulum", config, seed=0)
    returns = [r["episode_return"] for r in records]
    assert records[-1]["env_steps"] == 500 + 16 * 250
    assert returns[0] < 200, returns
    assert max(returns[-4:]) >= 900, returns
