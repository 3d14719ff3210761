"""Seeds vmapped in one program do not mix, for the learners whose own test files do not run a
sweep against single runs (PETS, SAC, MBPO, Dyna-Q and Dreamer do).

Each learner's `test` preset runs as the sweep runs it (`jax.vmap` of `make_pure_train`) over
keys (k0, k1) and over (k1, k0): every metric of a seed must be the same wherever it sits in the
batch (one compile; a reduction or a key shared across the seed axis breaks it), and the two
seeds must differ. Against separate single runs a vmapped seed agrees to float rounding, which
learners that choose by ranking (CEM's elites in PlaNet, MAAC's) can amplify over episodes: a
PlaNet test-preset run matched its single run's model losses to 7 digits in the first fitted
episode and then planned differently.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mbjax import agents
from mbjax.agents.program import make_pure_train

# (algorithm, env): each learner on an env it supports, with its test preset.
# MAAC's test preset runs 6000 updates; two epochs of 20 steps run the same program.
SHORTER = {"maac": dict(num_epochs=2, steps_per_epoch=20, model_train_every=20,
                         init_random_steps=40)}
CASES = [
    ("gps", "cartpole_balance"),
    ("mbppo", "cartpole_swingup"),
    ("maac", "point_mass"),
    ("bptt", "pendulum_swingup"),
    ("planet", "cartpole_swingup"),
    ("mcts", "cartpole_discrete"),
    ("pilco", "cartpole_swingup"),
    ("e2c", "pendulum_swingup"),
]


@pytest.mark.parametrize("name, env", CASES, ids=[c[0] for c in CASES])
def test_a_seed_gives_the_same_run_wherever_it_sits_in_the_batch(name, env):
    algo = agents.get(name)
    config = dataclasses.replace(algo.preset(env, "test"), **SHORTER.get(name, {}))
    program = algo.make_program(config)
    train = make_pure_train(program)
    keys = jnp.stack([jax.random.PRNGKey(s) for s in (0, 1)])
    run = jax.jit(jax.vmap(train))
    with program.precision():  # PILCO's program computes in float64 (Program.x64)
        _, forward = run(keys)
        _, backward = run(keys[::-1])
    forward = jax.tree.map(np.asarray, forward)
    backward = jax.tree.map(lambda x: np.asarray(x)[::-1], backward)
    leaves = jax.tree_util.tree_leaves_with_path(forward)
    assert leaves
    for (path, got), want in zip(leaves, jax.tree.leaves(backward), strict=True):
        np.testing.assert_array_equal(got, want, err_msg=f"{name} {jax.tree_util.keystr(path)}")
    floats = [v for _, v in leaves if np.issubdtype(v.dtype, np.floating) and np.isfinite(v).all()]
    assert any(not np.array_equal(v[0], v[1]) for v in floats), f"{name}: seeds 0, 1 equal"
