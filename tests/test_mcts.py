"""MCTS with mctx (mbjax.planners.mcts) over the true env and a learned model, and the `mcts`
agent (mbjax.agents.mcts), on cartpole_discrete."""

import dataclasses
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mbjax import envs
from mbjax.agents import mcts as mcts_agent
from mbjax.models import ModelStep
from mbjax.planners import mcts
from mbjax.rollout import make_model_transition

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = mcts.MCTSConfig(num_simulations=8, rollout_policy="uniform", rollout_steps=20,
                        num_rollouts=2)


@pytest.fixture(scope="module")
def env():
    return envs.make("cartpole_discrete")


class ExactCartpoleModel:
    """A one-member protocol model whose `step` IS cart-pole's dynamics (the action one-hot:
    force = 10 (a[1] - a[0])): a learned model that learned perfectly, the honest reference for
    the learned-model search."""

    state_size, action_size, num_members, num_elites = 4, 2, 1, 1
    has_reward = has_termination = False

    def __init__(self):
        from mbjax.envs.tasks.cartpole_balance import CartpoleBalance

        self._physics = CartpoleBalance()

    def init(self, key):
        return {"unused": jnp.zeros(())}

    def elites(self, state):
        return jnp.zeros((1,), jnp.int32)

    def step(self, state, x, a, key, members=None):
        force = 10.0 * (a[..., 1:2] - a[..., 0:1])
        flat = jax.vmap(self._physics.dynamics)(x.reshape(-1, 4), force.reshape(-1, 1))
        return ModelStep(flat.reshape(x.shape), None, None)


def _exact_learned(config):
    model = ExactCartpoleModel()
    fns = envs.task_fns("cartpole_discrete")
    transition = make_model_transition(model, fns.reward_fn, fns.termination_fn, "hard")
    return model, transition, mcts.make_model_mcts_policy(model, transition, 2, config)


def _batch(env, n):
    return jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(1), n))


def _params(b, model_state=None):
    return mcts.SearchParams(model_state, jnp.zeros((b, 2), bool), jax.random.PRNGKey(7),
                             jnp.float32(1.0))


def test_one_hot_round_trip():
    actions = jnp.array([[0, 1, 2], [2, 2, 0]], jnp.int32)
    hot = mcts.one_hot_action(actions, 3)
    assert hot.shape == (2, 3, 3) and hot.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(hot.sum(-1)), 1.0)
    np.testing.assert_array_equal(np.asarray(mcts.action_from_one_hot(hot)), np.asarray(actions))


@pytest.mark.parametrize("which", ["true", "learned", "learned_mean"])
def test_recurrent_fn_is_pure_and_vmaps(env, which):
    states = _batch(env, 3)
    if which == "true":
        fn = jax.jit(mcts.make_recurrent_fn(env, SMALL))
        params, emb = _params(3), states
    else:
        model, transition, _ = _exact_learned(SMALL)
        members = "mean" if which == "learned_mean" else "sample"
        search = mcts.learned_search_model(model, transition, 2, members)
        fn = jax.jit(mcts.make_search_recurrent_fn(search, SMALL))
        params = _params(3, model.init(None))
        emb = mcts.ModelNode(states.obs, jnp.zeros((3,)))
    action, key = jnp.array([0, 1, 1], jnp.int32), jax.random.PRNGKey(2)
    out1, emb1 = fn(params, key, action, emb)
    out2, emb2 = fn(params, key, action, emb)
    jax.tree_util.tree_map(np.testing.assert_array_equal, (out1, emb1), (out2, emb2))
    # the next obs is the env's own step
    expected = jax.vmap(env.step)(states, action).obs
    np.testing.assert_allclose(np.asarray(emb1.obs), np.asarray(expected), rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(out1.reward), 1.0)
    # under vmap over a leading axis: the same as the plain batched call
    add = lambda x: x[None]  # noqa: E731
    vm = jax.vmap(fn, in_axes=(mcts.SearchParams(None, 0, None, None), None, 0, 0))
    o_v, e_v = vm(params._replace(invalid=params.invalid[None]), key, action[None],
                  jax.tree_util.tree_map(add, emb))
    np.testing.assert_allclose(np.asarray(o_v.value[0]), np.asarray(out1.value), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(e_v.obs[0]), np.asarray(emb1.obs), rtol=1e-6)


def test_terminated_node_is_absorbing(env):
    states = _batch(env, 2).replace(done=jnp.ones((2,), jnp.float32))
    fn = jax.jit(mcts.make_recurrent_fn(env, SMALL))
    out, emb = fn(_params(2), jax.random.PRNGKey(0), jnp.array([0, 1]), states)
    model, transition, _ = _exact_learned(SMALL)
    lfn = jax.jit(mcts.make_search_recurrent_fn(mcts.learned_search_model(model, transition, 2),
                                                SMALL))
    nodes = mcts.ModelNode(states.obs, jnp.ones((2,)))
    lout, lemb = lfn(_params(2, model.init(None)), jax.random.PRNGKey(0), jnp.array([0, 1]),
                     nodes)
    for o, e in ((out, emb), (lout, lemb)):
        for field in (o.reward, o.discount, o.value):
            np.testing.assert_array_equal(np.asarray(field), 0.0)
        np.testing.assert_array_equal(np.asarray(e.obs), np.asarray(states.obs))


@pytest.mark.parametrize("algorithm, which", [("gumbel_muzero", "true"), ("muzero", "learned")])
def test_masked_action_never_chosen_and_reproducible(env, algorithm, which):
    """Masked actions are never chosen nor visited in any node; the same key gives the same
    search. (muzero on the true env and gumbel interior nodes: the qtransform test.)"""
    config = dataclasses.replace(SMALL, algorithm=algorithm)
    states = _batch(env, 8)
    keys = jax.random.split(jax.random.PRNGKey(3), 8)
    if which == "true":
        act = jax.vmap(mcts.make_mcts_policy(env, config), in_axes=(0, 0, None))
    else:
        model, _, learned = _exact_learned(config)
        act = jax.vmap(lambda s, k, inv: learned(model.init(None), s.obs, k, inv),
                       in_axes=(0, 0, None))
    act = jax.jit(act)
    for masked in (0, 1):
        actions, info = act(states, keys, jnp.arange(2) == masked)
        assert np.all(np.asarray(actions) == 1 - masked)
        assert np.all(np.asarray(info["action_weights"])[:, masked] < 1e-6)
        assert np.all(np.asarray(info["tree_children_visits"])[:, :, masked] == 0)
    a1, i1 = act(states, keys, jnp.zeros((2,), bool))
    a2, i2 = act(states, keys, jnp.zeros((2,), bool))
    np.testing.assert_array_equal(np.asarray(a1), np.asarray(a2))
    np.testing.assert_array_equal(np.asarray(i1["action_weights"]),
                                  np.asarray(i2["action_weights"]))


def test_learned_search_on_exact_model_chooses_like_true_search(env):
    """A model equal to the true dynamics (task reward and termination): the learned-model
    search builds the same tree as the true-env search, so it picks the same actions."""
    config = dataclasses.replace(SMALL, num_simulations=8)
    # states spread over the balance region, so the searched values differ between actions
    keys = jax.random.split(jax.random.PRNGKey(11), 24)
    obs = jax.vmap(lambda k: jax.random.uniform(k, (4,), minval=-0.15, maxval=0.15))(keys)
    states = _batch(env, 24)
    states = states.replace(obs=obs, pipeline_state=obs)
    true_act = jax.jit(jax.vmap(mcts.make_mcts_policy(env, config)))
    model, _, learned = _exact_learned(config)
    learned_act = jax.jit(jax.vmap(lambda o, k: learned(model.init(None), o, k)))
    a_true, i_true = true_act(states, keys)
    a_model, i_model = learned_act(obs, keys)
    np.testing.assert_array_equal(np.asarray(a_model), np.asarray(a_true))
    np.testing.assert_allclose(np.asarray(i_model["root_value"]),
                               np.asarray(i_true["root_value"]), rtol=1e-4)
    np.testing.assert_array_equal(np.asarray(i_model["visit_counts"]),
                                  np.asarray(i_true["visit_counts"]))
    assert len(set(np.asarray(a_true).tolist())) == 2  # both actions occur: not a trivial match


def test_masked_qtransform_blocks_interior_nodes(env):
    """Interior masking: the wrapped qtransform gives prior-masked actions Q = -1e9."""
    state = env.reset(jax.random.PRNGKey(0))
    for algorithm in ("muzero", "gumbel_muzero"):
        act = mcts.make_mcts_policy(env, dataclasses.replace(
            SMALL, num_simulations=16, rollout_steps=10, algorithm=algorithm))
        action, info = jax.jit(act)(state, jax.random.PRNGKey(4), jnp.array([True, False]))
        visits = np.asarray(info["tree_children_visits"])          # [17, 2], every node
        assert int(action) == 1 and visits[:, 0].sum() == 0 and visits[:, 1].sum() > 0


def test_lookahead_value_sees_further_than_uniform(env):
    """The lookahead leaf policy balances far longer than uniform actions (~21 steps), which
    is why its value sees the track's ends (module docstring); both are 0 when terminated."""
    config = mcts.MCTSConfig(num_rollouts=1, lookahead_steps=60)
    search = mcts.env_search_model(env)
    states = _batch(env, 4)
    inv = jnp.zeros((2,), bool)
    keys = jax.random.split(jax.random.PRNGKey(5), 4)
    values = {}
    for policy, steps in (("uniform", 60), ("lookahead", 20)):
        cfg = dataclasses.replace(config, rollout_policy=policy, rollout_steps=steps)
        value = jax.vmap(mcts.make_leaf_value(search, cfg), (None, None, 0, 0, None, None))
        value = jax.jit(value)
        values[policy] = np.asarray(value(None, None, states, keys, inv, 1.0))
        dead = states.replace(done=jnp.ones((4,), jnp.float32))
        np.testing.assert_array_equal(np.asarray(value(None, None, dead, keys, inv, 1.0)), 0.0)
    assert values["uniform"].mean() < 35
    assert np.all(values["lookahead"] == 60.0), values  # survives the whole lookahead


def test_episode_runs_and_beats_random(env):
    config = dataclasses.replace(SMALL, rollout_steps=30)
    act = mcts.make_mcts_policy(env, config)
    keys = jax.random.split(jax.random.PRNGKey(5), 3)
    lengths = jax.jit(jax.vmap(lambda k: mcts.run_episode(env, act, k, num_steps=100)))(keys)
    rand = lambda s, k, inv: (jax.random.randint(k, (), 0, 2), {})  # noqa: E731
    rlen = jax.jit(jax.vmap(lambda k: mcts.run_episode(env, rand, k, num_steps=100)))(keys)
    assert float(rlen["length"].mean()) < 40
    assert float(lengths["length"].mean()) >= 80, lengths["length"]


def test_config_errors(env):
    with pytest.raises(ValueError, match="num_simulations"):
        mcts.MCTSConfig(num_simulations=0)
    with pytest.raises(ValueError, match="algorithm"):
        mcts.MCTSConfig(algorithm="alphazero")
    with pytest.raises(ValueError, match="discount"):
        mcts.MCTSConfig(discount=0.0)
    with pytest.raises(ValueError, match="rollout_policy"):
        mcts.MCTSConfig(rollout_policy="greedy")
    with pytest.raises(ValueError, match="discrete"):
        mcts.make_mcts_policy(envs.make("point_mass"), mcts.MCTSConfig())


# ----------------------------------------------------------------------------- the agent


def test_agent_config_errors_and_grid_leaves():
    config = mcts_agent.preset("cartpole_discrete", "test")
    assert set(mcts_agent.grid_leaves(config)) == {"search.discount"}
    assert set(mcts_agent.grid_leaves(mcts_agent.learned(config))) == {
        "search.discount", "ensemble.learning_rate"}
    with pytest.raises(ValueError, match="Config.model='oracle' is invalid"):
        dataclasses.replace(config, model="oracle")
    with pytest.raises(ValueError, match="num_seed_episodes=0 is invalid"):
        dataclasses.replace(config, model="learned", num_seed_episodes=0)
    with pytest.raises(ValueError, match="point_mass has continuous actions; mcts needs"):
        mcts_agent.make_program(dataclasses.replace(config, env="point_mass"))


def test_learned_agent_resume_equals_uninterrupted(tmp_path):
    """The learned model's run (seed episode, fits, searches): records, buffer and counters;
    an interrupted-and-resumed run ends with exactly the uninterrupted run's records."""
    from resume_check import assert_resume_matches

    config = mcts_agent.preset("cartpole_discrete", "learned_test")
    _, state, full = mcts_agent.train("cartpole_discrete", config, seed=3)
    assert len(full) == 3 and full[0]["root_value"] is None and full[0]["model_train_mse"] is None
    assert all(r["model_train_mse"] is not None and r["root_value"] > 0 for r in full[1:])
    total = sum(r["episode_length"] for r in full)
    assert full[-1]["env_steps"] == total == int(state.buffer.size)
    # every stored action is one-hot
    actions = np.asarray(state.buffer.data.action)[:total]
    np.testing.assert_array_equal(actions.sum(-1), 1.0)
    assert_resume_matches(mcts_agent.train, full, str(tmp_path / "ck"), 2,
                          env="cartpole_discrete", config=config, seed=3)


def test_train_cli_end_to_end(tmp_path):
    out = str(tmp_path / "run")
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.train", "--algo=mcts", "--env=cartpole_discrete",
         "--preset=test", "--quiet", f"--output_dir={out}", "--config.num_episodes=2"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with open(os.path.join(out, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f]
    assert len(records) == 2 and all(r["episode_length"] > 0 for r in records)
    assert os.path.exists(os.path.join(out, "curve.png"))
