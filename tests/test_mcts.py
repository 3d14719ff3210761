"""MCTS with mctx over the true env (mbjax.planners.mcts) on cartpole_discrete."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mbjax import envs
from mbjax.planners import mcts

SMALL = mcts.MCTSConfig(num_simulations=8, rollout_steps=20, num_rollouts=2)


@pytest.fixture(scope="module")
def env():
    return envs.make("cartpole_discrete")


def _batch(env, n):
    return jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(1), n))


def test_recurrent_fn_is_pure_and_vmaps(env):
    fn = jax.jit(mcts.make_recurrent_fn(env, SMALL))
    states = _batch(env, 3)
    invalid = jnp.zeros((3, 2), bool)
    action = jnp.array([0, 1, 1], jnp.int32)
    key = jax.random.PRNGKey(2)
    out1, emb1 = fn(invalid, key, action, states)
    out2, emb2 = fn(invalid, key, action, states)
    jax.tree_util.tree_map(np.testing.assert_array_equal, (out1, emb1), (out2, emb2))
    # batched == per-example (each example gets key split(key, B)[i] inside; compare dynamics
    # and reward/discount exactly, the random-rollout value with its own key)
    for i in range(3):
        one = jax.tree_util.tree_map(lambda x: x[i:i + 1], states)
        o, e = fn(invalid[i:i + 1], key, action[i:i + 1], one)
        np.testing.assert_allclose(np.asarray(e.obs[0]), np.asarray(emb1.obs[i]), rtol=1e-6)
        assert float(o.reward[0]) == float(out1.reward[i])
        assert float(o.discount[0]) == float(out1.discount[i])
    # under vmap over a leading axis the function gives the same as the plain batched call
    vm = jax.vmap(fn, in_axes=(0, None, 0, 0))
    add = lambda x: x[None]  # noqa: E731
    o_v, e_v = vm(invalid[None], key, action[None], jax.tree_util.tree_map(add, states))
    np.testing.assert_allclose(np.asarray(o_v.value[0]), np.asarray(out1.value), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(e_v.obs[0]), np.asarray(emb1.obs), rtol=1e-6)


def test_terminated_node_is_absorbing(env):
    fn = mcts.make_recurrent_fn(env, SMALL)
    states = _batch(env, 2)
    states = states.replace(done=jnp.ones((2,), jnp.float32))
    out, emb = fn(jnp.zeros((2, 2), bool), jax.random.PRNGKey(0), jnp.array([0, 1]), states)
    np.testing.assert_array_equal(np.asarray(out.reward), 0.0)
    np.testing.assert_array_equal(np.asarray(out.discount), 0.0)
    np.testing.assert_array_equal(np.asarray(emb.obs), np.asarray(states.obs))


@pytest.mark.parametrize("algorithm", ["gumbel_muzero", "muzero"])
def test_masked_action_never_chosen_and_reproducible(env, algorithm):
    config = mcts.MCTSConfig(num_simulations=8, rollout_steps=20, algorithm=algorithm)
    act = jax.jit(jax.vmap(mcts.make_mcts_policy(env, config), in_axes=(0, 0, None)))
    states = _batch(env, 16)
    keys = jax.random.split(jax.random.PRNGKey(3), 16)
    for masked in (0, 1):
        invalid = jnp.arange(2) == masked
        actions, info = act(states, keys, invalid)
        assert np.all(np.asarray(actions) == 1 - masked)
        assert np.all(np.asarray(info["action_weights"])[:, masked] < 1e-6)
    a1, i1 = act(states, keys, None)
    a2, i2 = act(states, keys, None)
    np.testing.assert_array_equal(np.asarray(a1), np.asarray(a2))
    np.testing.assert_array_equal(np.asarray(i1["action_weights"]),
                                  np.asarray(i2["action_weights"]))


def test_masked_qtransform_blocks_interior_nodes(env):
    """Interior masking: the wrapped qtransform gives prior-masked actions Q = -1e9."""
    state = env.reset(jax.random.PRNGKey(0))
    for algorithm in ("muzero", "gumbel_muzero"):
        act = mcts.make_mcts_policy(env, mcts.MCTSConfig(
            num_simulations=16, rollout_steps=10, algorithm=algorithm))
        action, info = jax.jit(act)(state, jax.random.PRNGKey(4), jnp.array([True, False]))
        visits = np.asarray(info["tree_children_visits"])          # [17, 2], every node
        assert int(action) == 1 and visits[:, 0].sum() == 0 and visits[:, 1].sum() > 0


def test_episode_runs_and_beats_random(env):
    config = mcts.MCTSConfig(num_simulations=8, rollout_steps=30, num_rollouts=2,
                             algorithm="muzero")
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
    with pytest.raises(ValueError, match="discrete"):
        mcts.make_mcts_policy(envs.make("point_mass"), mcts.MCTSConfig())
