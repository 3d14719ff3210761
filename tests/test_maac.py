"""MAAC (issue 15 item 2): learning on point_mass, SAC's critic step reused exactly, the pathwise
actor, the CLI and an exact resume."""

import dataclasses
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from resume_check import assert_resume_matches

from mbjax import acting
from mbjax.agents import maac, mbpo
from mbjax.types import Transition

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config(**kw) -> maac.Config:
    # A fixed replay capacity keeps the compiled epoch identical for any num_epochs (the CLI
    # test's run hits the compilation cache of the fixture's).
    return dataclasses.replace(maac.preset("point_mass", "test"),
                               **{"num_epochs": 3, "replay_capacity": 1000, **kw})


@pytest.fixture(scope="module")
def point_mass_run():
    config = _config()
    make_policy, final_state, records = maac.train("point_mass", config, seed=0)
    return config, make_policy, final_state, records


def test_maac_learns_point_mass(point_mass_run):
    config, make_policy, final_state, records = point_mass_run
    returns = [r["episode_return"] for r in records]
    # A random policy scores about -45; reaching x=1 and staying there about -6.
    assert max(returns) > -15, returns
    assert [r["env_steps"] for r in records] == [300, 400, 500]
    assert all(r["actor_grad_norm"] > 0 and r["model_buffer_size"] > 0 for r in records)
    assert config.horizon == maac.HORIZONS["test"] == 2
    env = maac.make_maac(config).env
    init_carry, policy = make_policy(final_state)
    episode = jax.jit(lambda k: acting.policy_return(env, init_carry, policy, k, 50))
    assert float(episode(jax.random.PRNGKey(5))) > -20


def test_interrupted_and_resumed_run_equals_uninterrupted(point_mass_run, tmp_path):
    config, _, _, full = point_mass_run
    assert_resume_matches(maac.train, full, str(tmp_path / "ck"), 2, env="point_mass",
                          config=config, seed=0)


def test_critic_step_is_sacs_and_the_actor_follows_the_pathwise_gradient():
    """One MAAC update from a SAC state moves the critics exactly as SAC's update (same batch,
    same key), while the actor's step is the pathwise one (not SAC's)."""
    config = _config()
    bundle = maac.make_maac(config)
    sac_state = bundle.sac.init(jax.random.PRNGKey(0))
    model_state = bundle.model.init(jax.random.PRNGKey(1))  # unfitted: the update is tested
    n, obs_size, action_size = config.sac.batch_size, bundle.sac.obs_size, bundle.sac.action_size
    k_obs, k_act, k_next, k_rew = jax.random.split(jax.random.PRNGKey(2), 4)
    batch = Transition(
        obs=jax.random.normal(k_obs, (n, obs_size)),
        action=jax.random.uniform(k_act, (n, action_size), minval=-1.0, maxval=1.0),
        reward=jax.random.normal(k_rew, (n,)), next_obs=jax.random.normal(k_next, (n, obs_size)),
        terminated=jnp.zeros((n,)), truncated=jnp.zeros((n,)))
    key = jax.random.PRNGKey(3)
    parts = bundle.sac.parts
    setup = maac.ImaginationSetup(bundle.model, config.horizon, None, None, config.max_grad_norm)
    after, metrics = jax.jit(lambda s: maac.update(parts, setup, s, model_state, batch,
                                                   batch.obs, key))(sac_state)
    sac_after, _ = jax.jit(bundle.sac.update)(sac_state, batch, key)
    for a, b in zip(jax.tree_util.tree_leaves(after.critic_params),
                    jax.tree_util.tree_leaves(sac_after.critic_params), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    moved = [float(jnp.max(jnp.abs(a - b))) for a, b in zip(
        jax.tree_util.tree_leaves(after.policy_params),
        jax.tree_util.tree_leaves(sac_after.policy_params), strict=True)]
    assert max(moved) > 1e-6
    # The actor's loss is -J of the imagined path: its gradient is finite and reaches the policy.
    assert np.isfinite(float(metrics["actor_loss"])) and float(metrics["actor_grad_norm"]) > 0


def test_config_errors_and_presets():
    with pytest.raises(ValueError, match=r"Config.horizon=0 is invalid"):
        _config(horizon=0)
    with pytest.raises(ValueError, match=r"Config.max_grad_norm=0.0 is invalid"):
        _config(max_grad_norm=0.0)
    cpu = maac.preset("brax/inverted_pendulum", "cpu")
    base = mbpo.preset("brax/inverted_pendulum", "cpu")
    assert cpu.horizon == 3 and cpu.model == base.model and cpu.sac == base.sac
    assert set(maac.grid_leaves(cpu)) == set(mbpo.grid_leaves(base))


def test_train_cli_end_to_end(tmp_path):
    out = str(tmp_path / "run")
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.train", "--algo=maac", "--env=point_mass",
         "--preset=test", "--quiet", f"--output_dir={out}", "--config.num_epochs=1",
         "--config.replay_capacity=1000"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert os.path.exists(os.path.join(out, "metrics.jsonl"))
