"""PETS end to end: learning, vmapped seeds, exact resume, configuration errors."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from resume_check import assert_resume_matches

from mbjax import acting
from mbjax.agents import pets
from mbjax.agents.program import run_host
from mbjax.models import EnsembleConfig


def _point_mass_config(**kw) -> pets.Config:
    return dataclasses.replace(pets.preset("point_mass", "test"), **{"num_episodes": 3, **kw})


@pytest.fixture(scope="module")
def point_mass_run():
    config = _point_mass_config()
    make_policy, final_state, records = pets.train("point_mass", config, seed=0)
    return config, make_policy, final_state, records


def test_pets_solves_point_mass(point_mass_run):
    _, _, _, records = point_mass_run
    returns = [r["episode_return"] for r in records]
    # Episode 0 is random (about -45); reaching the goal and staying costs about -6.
    assert returns[0] < -25
    assert returns[-1] > -10, returns
    assert [r["env_steps"] for r in records] == [50, 100, 150]
    assert records[1]["model_holdout_mse"] is not None and records[0]["model_holdout_mse"] is None


def test_make_policy_controls_the_env(point_mass_run):
    config, make_policy, final_state, _ = point_mass_run
    init_carry, policy = make_policy(final_state)
    pm = pets.make_pets(config)
    env = pm.env

    episode = jax.jit(lambda k: acting.policy_return(env, init_carry, policy, k, pm.num_steps))
    assert float(episode(jax.random.PRNGKey(5))) > -10


def test_vmapped_seeds_equal_single_runs():
    config = _point_mass_config(num_episodes=2)
    keys = jnp.stack([jax.random.PRNGKey(s) for s in (0, 1)])
    _, batched = jax.jit(jax.vmap(pets.make_train(config)))(keys)
    assert batched.episode_return.shape == (2, 2)
    program = pets.make_program(config)
    for i, seed in enumerate((0, 1)):
        # A single run (the host driver, same episode functions, no vmap).
        _, records = run_host(program, seed=seed)
        np.testing.assert_allclose(
            [r["episode_return"] for r in records], batched.episode_return[i], rtol=1e-3, atol=1e-3
        )
    assert not np.allclose(batched.episode_return[0], batched.episode_return[1])


def test_interrupted_and_resumed_run_equals_uninterrupted(tmp_path):
    config = _point_mass_config(num_episodes=3)
    _, _, full = pets.train("point_mass", config, seed=3)

    assert_resume_matches(pets.train, full, str(tmp_path / "ck"), 2, env="point_mass",
                          config=config, seed=3)


def test_config_validation_messages():
    with pytest.raises(ValueError, match="variant.*allowed"):
        pets.Config(variant="v2.0")
    with pytest.raises(ValueError, match="num_seed_episodes"):
        pets.Config(num_episodes=1, num_seed_episodes=1)
    with pytest.raises(ValueError, match="planner.*allowed"):
        pets.Config(planner="cmaes")
    with pytest.raises(ValueError, match="num_particles=7 must be a multiple of the 5 members"):
        pets.make_pets(pets.Config(model=EnsembleConfig(ensemble_size=5),
                                   propagation=pets.Config().propagation.__class__(num_particles=7)))
    with pytest.raises(ValueError, match="replan_every.*horizon"):
        pets.Config(replan_every=26)
    with pytest.raises(ValueError, match="learned_reward"):
        pets.Config(learned_reward=True)
    with pytest.raises(ValueError, match="preset"):
        pets.preset("point_mass", "huge")
    icem = pets.with_planner(pets.Config(), "icem")
    assert type(icem.planner_config).__name__ == "ICEMConfig"


@pytest.mark.parametrize(
    "overrides",
    [
        dict(variant="v0.5"),
        dict(variant="v1.0"),
        dict(replan_every=3),
    ],
    ids=["v0.5", "v1.0", "replan_every_3"],
)
def test_loop_variants_learn(overrides):
    config = _point_mass_config(num_episodes=2, **overrides)
    _, records = run_host(pets.make_program(config), seed=0)
    assert records[1]["episode_return"] > records[0]["episode_return"] + 10, records


def test_pets_beats_random_on_cartpole_swingup_with_a_tiny_budget():
    config = dataclasses.replace(
        pets.preset("cartpole_swingup", "test"),
        num_episodes=4,
        model=EnsembleConfig(ensemble_size=3, hidden_sizes=(64, 64), learning_rate=3e-3,
                             batch_size=32, max_epochs=60, patience=10),
        planner_config=pets.preset("cartpole_swingup", "test").planner_config.__class__(
            horizon=20, population=100, num_elites=10, iterations=3),
        propagation=pets.Config().propagation.__class__(mode="tsinf", num_particles=3),
    )
    _, metrics = jax.jit(pets.make_train(config))(jax.random.PRNGKey(0))
    returns = np.asarray(metrics.episode_return)
    print("cartpole returns", returns)
    # Random actions score about -4 (the pole hangs, the action cost adds up).
    assert returns[0] < 5
    assert returns[1:].max() > returns[0] + 40, returns


def test_learned_reward_and_termination_heads_are_trained_and_used():
    # On point_mass a learned reward is exploited beyond the data (planning drives x past the
    # goal where the reward head extrapolates upward), so this checks the plumbing, not returns:
    # the heads are fitted on the collected data and the planner's values come from them.
    model = EnsembleConfig(ensemble_size=2, hidden_sizes=(32, 32), learning_rate=3e-3,
                           batch_size=32, max_epochs=40, patience=None, predict_reward=True,
                           predict_termination=True, nll_beta=1.0)
    config = _point_mass_config(num_episodes=2, learned_reward=True, learned_termination=True,
                                model=model)
    pm = pets.make_pets(config)
    state, metrics = jax.jit(pets.make_train(config))(jax.random.PRNGKey(0))
    assert np.isfinite(np.asarray(metrics.planned_return)[1])
    n = int(state.buffer.size)
    data = jax.tree_util.tree_map(lambda x: x[:n], state.buffer.data)
    # The final state's model was fitted on the seed episode (first 50 transitions).
    seed_data = jax.tree_util.tree_map(lambda x: x[:50], data)
    pred = pm.model.predict(state.model, seed_data.obs, seed_data.action)
    rmse = np.sqrt(np.mean((np.asarray(pred.reward_mean) - np.asarray(seed_data.reward)) ** 2))
    assert rmse < 0.25 * float(np.std(seed_data.reward)), rmse
    assert float(np.max(pred.termination_prob)) < 0.2  # point_mass never terminates


# ---------------------------------------------------------------------------- NaN in training


class _NaNRewardEpisodes:
    """An env whose episodes are "poisoned" with probability 1/2 (drawn from the reset key):
    every reward of a poisoned episode is NaN, as a faulty simulator would give."""

    def __init__(self, env):
        self.env = env

    def __getattr__(self, name):
        return getattr(self.env, name)

    def reset(self, key):
        state = self.env.reset(key)
        poisoned = jax.random.bernoulli(jax.random.fold_in(key, 7))
        return state.replace(info={**state.info, "poisoned": poisoned})

    def step(self, state, action):
        out = self.env.step(state, action)
        poisoned = state.info["poisoned"]
        reward = jnp.where(poisoned, jnp.nan, out.reward)
        return out.replace(reward=reward, info={**out.info, "poisoned": poisoned})


@pytest.fixture
def nan_reward_env(monkeypatch):
    import mbjax.envs

    make = mbjax.envs.make
    monkeypatch.setattr(mbjax.envs, "make", lambda *a, **kw: _NaNRewardEpisodes(make(*a, **kw)))


def test_nan_from_the_env_is_rolled_back_or_raised(nan_reward_env):
    config = _point_mass_config(num_episodes=4, on_nonfinite="rollback")
    state, records = run_host(pets.make_program(config), seed=0)
    rolled = [r["episode"] for r in records if r["rolled_back"]]
    kept = [r for r in records if not r["rolled_back"]]
    assert rolled and kept, records  # seed 0 meets poisoned and clean episodes
    assert all(np.isfinite(r["episode_return"]) for r in kept)
    # The final state holds only what the kept episodes added: finite data and model.
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree_util.tree_leaves(state))
    assert int(state.episode) == len(kept) and int(state.buffer.size) == 50 * len(kept)
    # The pure train (one compiled program) rolls back the same iterations.
    pure_state, metrics = jax.jit(pets.make_train(config))(jax.random.PRNGKey(0))
    assert list(np.flatnonzero(np.asarray(metrics.nonfinite))) == rolled
    assert int(pure_state.episode) == len(kept)
    with pytest.raises(FloatingPointError, match=f"iteration {rolled[0]}"):
        run_host(pets.make_program(dataclasses.replace(config, on_nonfinite="raise")), seed=0)


def test_on_nonfinite_is_validated():
    with pytest.raises(ValueError, match=r"Config.on_nonfinite='skip' is invalid; allowed: "
                                         r"one of \['raise', 'rollback'\]"):
        _point_mass_config(on_nonfinite="skip")
    program = pets.make_program(_point_mass_config(on_nonfinite="rollback"))
    assert program.on_nonfinite == "rollback"


# ---------------------------------------------------------------------------- B envs, early stop


def test_num_envs_collects_every_env_into_one_buffer():
    config = _point_mass_config(num_envs=3)
    state, metrics = jax.jit(pets.make_train(config))(jax.random.PRNGKey(0))
    per_env = np.asarray(metrics.episode_return_per_env)
    assert per_env.shape == (3, 3) and np.isfinite(per_env).all()
    assert len(np.unique(per_env[-1])) == 3  # own resets and warm starts: different returns
    np.testing.assert_allclose(metrics.episode_return, per_env.mean(axis=1), rtol=1e-6)
    assert int(state.buffer.size) == 3 * 3 * 50 == int(state.buffer.capacity)
    assert list(np.asarray(metrics.env_steps)) == [150, 300, 450]
    with pytest.raises(ValueError, match="num_envs"):
        _point_mass_config(num_envs=0)


def test_episodes_stop_at_termination_also_under_vmap():
    # cartpole_balance episodes end when the pole falls; planning stops there (while_loop) and a
    # vmapped sweep over seeds (and over envs) runs until all are done, equal to single runs.
    config = dataclasses.replace(pets.preset("cartpole_balance", "test"), num_episodes=2,
                                 num_envs=2)
    keys = jnp.stack([jax.random.PRNGKey(s) for s in (0, 1)])
    states, batched = jax.jit(jax.vmap(pets.make_train(config)))(keys)
    num_steps = pets.make_pets(config).num_steps
    lengths = np.asarray(batched.episode_length)
    assert (lengths < num_steps).all(), lengths  # every episode terminated early
    np.testing.assert_array_equal(states.buffer.size, 2 * lengths.sum(axis=1))
    for i in (0, 1):
        state, single = jax.jit(pets.make_train(config))(keys[i])
        np.testing.assert_allclose(single.episode_return_per_env, batched.episode_return_per_env[i],
                                   rtol=1e-4)
        np.testing.assert_array_equal(single.episode_length, lengths[i])
        assert int(state.buffer.size) == int(states.buffer.size[i])
