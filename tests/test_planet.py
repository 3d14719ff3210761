"""PlaNet (issue 13 item 3): the latent objective against a hand rollout of the RSSM prior and
reward head, CEM planning in latent space, the CLI end to end with evaluation, an interrupted and
resumed run, pixel observations, bad inputs."""

import dataclasses
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mbjax.agents import planet
from mbjax.agents.program import make_pure_train
from mbjax.rollout import PropagationConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _planet(**overrides):
    config = dataclasses.replace(planet.preset("cartpole_swingup", "test"), **overrides)
    return planet.make_planet(config)


@pytest.fixture(scope="module")
def start_point():
    """A model state whose params are perturbed (the reward head starts at zero, which would
    make every return 0) and a filtered start latent x0 [S]; shared by the objective tests."""
    p = _planet()

    @jax.jit
    def make(key):
        k_init, k_noise, k_reset, k_filter = jax.random.split(key, 4)
        state = p.model.init(k_init)
        leaves, tree = jax.tree_util.tree_flatten(state.params)
        keys = jax.random.split(k_noise, len(leaves))
        noisy = [x + 0.5 * jax.random.normal(k, x.shape)
                 for x, k in zip(leaves, keys, strict=True)]
        params = jax.tree_util.tree_unflatten(tree, noisy)
        carry = p.start(k_reset, None)
        latent, _, _ = p.model.fns.filter_step(params, carry.latent, carry.action,
                                               p.env.reset(k_reset).obs, carry.is_first,
                                               k_filter)
        return state._replace(params=params), p.model.feature(latent)

    return make(jax.random.PRNGKey(0))


def _hand_returns(p, params, x0, actions, step_keys, use_continue):
    """Sum over t of the reward head at the prior's latent (times survival under the continue
    head), stepping candidates [N] together with imagine_step, one Python step at a time."""
    n, horizon, _ = actions.shape
    fns = p.model.fns
    # Each step's functions jitted (op-by-op flax would compile every primitive separately).
    prior_step = jax.jit(fns.imagine_step)
    heads = jax.jit(lambda latent: (fns.reward(params, latent), fns.cont_prob(params, latent)))
    latent = p.model.latent(jnp.broadcast_to(x0, (1, n, x0.shape[0])))
    total, alive = np.zeros(n), np.ones(n)
    for t in range(horizon):
        key = None if step_keys is None else step_keys[t]
        latent = prior_step(params, latent, actions[None, :, t], key)
        reward, cont = (np.asarray(h)[0] for h in heads(latent))
        total += alive * reward
        if use_continue:
            alive = alive * cont
    return total


@pytest.mark.parametrize("mode, learned_termination",
                         [("expectation", False), ("expectation", True), ("tsinf", False)])
def test_latent_objective_is_the_rssm_prior_and_reward_head(start_point, mode,
                                                           learned_termination):
    state, x0 = start_point
    p = _planet(propagation=PropagationConfig(mode=mode, num_particles=1),
                learned_termination=learned_termination)
    actions = jax.random.uniform(jax.random.PRNGKey(5), (3, 4, 1), minval=-1, maxval=1)
    key = jax.random.PRNGKey(6)
    values = jax.jit(lambda s, x, a: p.objective_for(s, x, key)(a))(state, x0, actions)
    # propagate's documented key use: (k_assign, k_steps) = split(key), one key per step.
    step_keys = None if mode == "expectation" else jax.random.split(jax.random.split(key)[1], 4)
    want = _hand_returns(p, state.params, x0, actions, step_keys, learned_termination)
    assert np.max(np.abs(want)) > 1e-2  # non-trivial rewards
    np.testing.assert_allclose(np.asarray(values), want, rtol=2e-5, atol=2e-6)


def test_cem_plans_in_latent_space(start_point):
    state, x0 = start_point
    p = _planet(propagation=PropagationConfig(mode="expectation", num_particles=1))
    objective = jax.jit(p.objective_for(state, x0, jax.random.PRNGKey(0)))
    planner_state = p.planner.init(1, jax.random.PRNGKey(1))
    actions, _, info = jax.jit(lambda s, k: p.planner.plan(s, objective, x0, k))(
        planner_state, jax.random.PRNGKey(2))
    assert actions.shape == (4, 1) and float(jnp.max(jnp.abs(actions))) <= 1.0
    random = jax.random.uniform(jax.random.PRNGKey(3), (64, 4, 1), minval=-1, maxval=1)
    # The plan (CEM's final mean) and the best sample it saw beat the median random sequence.
    median = float(jnp.median(objective(random)))
    assert float(objective(actions[None])[0]) > median and float(info["best_return"]) > median


def test_train_cli_end_to_end_and_evaluate(tmp_path):
    out = str(tmp_path / "run")
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.train", "--algo=planet", "--env=cartpole_swingup",
         "--preset=test", "--quiet", f"--output_dir={out}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with open(os.path.join(out, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f if line.strip()]
    assert [r["env_steps"] for r in records] == [20, 40, 60]
    assert records[0]["planned_return"] is None and records[-1]["planned_return"] is not None
    assert np.isfinite(records[-1]["model_loss"])
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.evaluate", f"--run_dir={out}", "--episodes=2",
         "--novideo"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "planet on cartpole_swingup after 3 episodes: 2 episodes" in proc.stdout


def test_interrupted_and_resumed_run_equals_uninterrupted(tmp_path):
    from resume_check import assert_resume_matches

    config = planet.preset("cartpole_swingup", "test")
    _, _, full = planet.train("cartpole_swingup", config, seed=3)
    assert len(full) == 3
    assert_resume_matches(planet.train, full, str(tmp_path / "ck"), 2, env="cartpole_swingup",
                          config=config, seed=3)


def test_pixels_run():
    config = dataclasses.replace(planet.preset("cartpole_swingup", "test"), pixels=True,
                                 image_size=16, num_episodes=2, episode_length=12)
    assert config.model.encoder == "conv" and config.model.image_channels == 3
    final, metrics = jax.jit(make_pure_train(planet.make_program(config)))(
        jax.random.PRNGKey(0))
    assert final.buffer.data.obs.dtype == jnp.uint8
    assert final.buffer.data.obs.shape[1:] == (16, 16, 3)
    assert int(final.buffer.size) == 24 and not bool(np.any(metrics.nonfinite))
    assert np.isfinite(float(metrics.model_loss[-1]))
    assert np.isfinite(float(metrics.planned_return[-1]))


def test_bad_inputs():
    config = planet.preset("cartpole_swingup", "test")
    with pytest.raises(ValueError, match="exploration_noise=-0.1 is invalid"):
        dataclasses.replace(config, exploration_noise=-0.1)
    with pytest.raises(ValueError, match="model.encoder='conv' is invalid"):
        dataclasses.replace(config, model=dataclasses.replace(config.model, encoder="conv"))
    with pytest.raises(ValueError, match="pixels=False is invalid"):
        dataclasses.replace(config, image_size=32)
    with pytest.raises(ValueError, match="image_size=24 is invalid"):
        dataclasses.replace(config, pixels=True, image_size=24)
    with pytest.raises(ValueError, match="seq_len=8 is invalid; allowed: at most the 5"):
        planet.make_planet(dataclasses.replace(config, episode_length=5))
    with pytest.raises(ValueError, match="discrete actions"):
        planet.make_planet(dataclasses.replace(config, env="maze/dyna"))
    assert set(planet.grid_leaves(config)) == {
        "planner_config.alpha", "model.learning_rate", "exploration_noise"}
