"""mbjax.envs: registry, protocol conformance, wrappers, task functions vs. real transitions.

Heavy backends (Brax generalized, MJX) compile slowly on CPU, so each heavy env compiles ONE
jitted random-policy rollout (vmap over envs + scan over steps), cached at module scope, and every
check on that env reads from it.
"""

from __future__ import annotations

import dataclasses
import functools
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mbjax.envs as envs
from mbjax.envs.base import Env, State
from mbjax.envs.random_rollout import make_random_rollout
from mbjax.envs.task_fns import MEASURED_MAX_ABS_ERROR
from mbjax.envs.wrappers import EpisodeWrapper

OWN = ["cartpole_swingup", "cartpole_balance", "pendulum_swingup", "point_mass"]
# Heavy envs checked for conformance and task-function agreement (one compile each).
HEAVY = [
    "brax/inverted_pendulum", "brax/reacher", "brax/halfcheetah", "brax/hopper",
    "dmc/CartpoleSwingup", "dmc/CheetahRun",
]
BATCH, STEPS = 8, 40  # the setting under which task_fns.MEASURED_MAX_ABS_ERROR was measured
# A short time limit inside the rollout checks truncation on the Playground adapter for free.
HEAVY_KWARGS = {"dmc/CartpoleSwingup": {"episode_length": 30}}


@functools.lru_cache(maxsize=None)
def _env(name: str):
    return envs.make(name, **HEAVY_KWARGS.get(name, {}))


@functools.lru_cache(maxsize=None)
def _rollout_fn(name: str):
    return jax.jit(make_random_rollout(_env(name), BATCH, STEPS))


@functools.lru_cache(maxsize=None)
def _rollout(name: str, seed: int = 0):
    _, traj = _rollout_fn(name)(jax.random.PRNGKey(seed))
    return jax.tree.map(np.asarray, traj)


# ----------------------------------------------------------------------------- registry / errors


def test_import_does_not_pull_heavy_backends():
    code = (
        "import sys, mbjax.envs as e; e.names(); e.task_fns('cartpole_swingup');"
        "bad = [m for m in ('brax', 'mujoco_playground', 'mujoco') if m in sys.modules];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_names_match_installed_packages():
    import brax.envs
    from mujoco_playground import dm_control_suite

    assert set(envs.BRAX_ENVS) == set(brax.envs._envs) - {"fast"}
    assert set(envs.DMC_ENVS) == set(dm_control_suite.ALL_ENVS)
    names = envs.names()
    assert len(names) == len(set(names))
    assert set(OWN) <= set(names)
    assert {f"brax/{n}" for n in envs.BRAX_ENVS} | {f"dmc/{n}" for n in envs.DMC_ENVS} <= set(names)


def test_unknown_name_lists_known_and_suggests():
    with pytest.raises(ValueError, match="Did you mean 'cartpole_swingup'") as err:
        envs.make("cartpole_swingp")
    assert "brax/halfcheetah" in str(err.value) and "dmc/CheetahRun" in str(err.value)
    with pytest.raises(ValueError, match="Known environments"):
        envs.make("brax/nonexistent_thing_xyz")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"episode_length": 0}, "episode_length"),
        ({"episode_length": -5}, "episode_length"),
        ({"episode_length": 2.5}, "episode_length"),
        ({"action_repeat": 0}, "action_repeat"),
        ({"action_repeat": 1.5}, "action_repeat"),
        ({"goall": 1.0}, r"unknown keyword.*goall.*allowed.*goal"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        envs.make("point_mass", **kwargs)


def test_bad_family_arguments():
    with pytest.raises(ValueError, match="backend='bogus'"):
        envs.make("brax/hopper", backend="bogus")
    with pytest.raises(ValueError, match="unknown keyword.*not_a_param"):
        envs.make("brax/hopper", not_a_param=3)
    with pytest.raises(ValueError, match="impl='cuda'"):
        envs.make("dmc/CartpoleSwingup", impl="cuda")
    with pytest.raises(ValueError, match="unknown keyword.*nope"):
        envs.make("dmc/CartpoleSwingup", nope=1)
    with pytest.raises(ValueError, match="config_overrides.*nope"):
        envs.make("dmc/CartpoleSwingup", config_overrides={"nope": 1})
    with pytest.raises(ValueError, match="reward_type"):
        envs.make("pendulum_swingup", reward_type="sparse")


def test_task_fns_errors_and_table():
    with pytest.raises(ValueError, match="no task functions.*available for.*brax/hopper"):
        envs.task_fns("brax/humanoid")
    with pytest.raises(ValueError, match="Unknown environment"):
        envs.task_fns("not_an_env")
    assert set(envs.task_names()) <= set(envs.names())
    required = set(OWN) | {
        "brax/inverted_pendulum", "brax/halfcheetah", "brax/hopper", "brax/reacher",
        "dmc/CartpoleSwingup", "dmc/CheetahRun",
    }
    assert required <= set(envs.task_names())
    table = envs.describe()
    for name in envs.task_names():
        assert f"`{name}`" in table
    exact = {row["env"]: row["reward_is_exact"] for row in envs.TASK_TABLE}
    assert exact["cartpole_swingup"] and not exact["brax/halfcheetah"]
    assert exact["dmc/CheetahRun"] and not exact["brax/hopper"]



def test_resolve_task_gives_known_functions_only_where_asked():
    assert envs.resolve_task("no_such_env", True, True) == (None, None)  # nothing to look up
    fns = envs.task_fns("brax/hopper")
    assert envs.resolve_task("brax/hopper", True, False) == (None, fns.termination_fn)
    with pytest.raises(ValueError, match="'brax/hopper'.*cannot be computed exactly"):
        envs.resolve_task("brax/hopper", False, True)
    assert envs.resolve_task("brax/hopper", False, True, use_estimated_reward=True) == (
        fns.reward_fn, None)
    point = envs.task_fns("point_mass")
    assert envs.resolve_task("point_mass", False, False) == (point.reward_fn,
                                                              point.termination_fn)
    with pytest.raises(ValueError, match="Unknown environment"):
        envs.resolve_task("no_such_env", False, True)

# ----------------------------------------------------------------------------- own tasks: protocol


@pytest.mark.parametrize("name", OWN)
def test_own_task_protocol(name):
    env = envs.make(name)
    assert isinstance(env, Env) and env.backend == "jax"
    state = jax.jit(env.reset)(jax.random.PRNGKey(0))
    assert isinstance(state, State)
    assert state.obs.shape == (env.observation_size,) and state.obs.dtype == jnp.float32
    step = jax.jit(env.step)
    nstate = step(state, jnp.zeros(env.action_size))
    assert nstate.obs.shape == (env.observation_size,)
    for x in (nstate.reward, nstate.done, nstate.info["truncation"]):
        assert x.shape == () and x.dtype == jnp.float32
    assert float(nstate.info["steps"]) == 1.0
    # Observations are smooth: finite and not exploding under the largest actions.
    big = step(nstate, jnp.ones(env.action_size))
    assert np.all(np.isfinite(big.obs)) and not np.allclose(big.obs, nstate.obs)


@pytest.mark.parametrize("name", OWN)
def test_own_task_vmap_determinism_and_clipping(name):
    env = envs.make(name)
    keys = jax.random.split(jax.random.PRNGKey(3), 5)
    batched = jax.jit(jax.vmap(env.reset))(keys)
    assert batched.obs.shape == (5, env.observation_size)
    single = env.reset(keys[2])
    np.testing.assert_allclose(batched.obs[2], single.obs, rtol=1e-6)
    again = jax.jit(jax.vmap(env.reset))(keys)
    np.testing.assert_array_equal(batched.obs, again.obs)
    assert not np.allclose(batched.obs[0], batched.obs[1])  # different keys, different starts

    step = jax.jit(jax.vmap(env.step))
    action = jnp.linspace(-1.0, 1.0, 5)[:, None] * jnp.ones((5, env.action_size))
    out = step(batched, action)
    assert out.reward.shape == (5,) and out.obs.shape == (5, env.observation_size)
    # Actions beyond [-1, 1] act like the bound they exceed.
    clipped = step(batched, jnp.sign(action) * 7.0)
    bound = step(batched, jnp.sign(action))
    np.testing.assert_allclose(clipped.obs, bound.obs, rtol=1e-6)
    np.testing.assert_allclose(clipped.reward, bound.reward, rtol=1e-6)


def test_episode_length_truncates():
    env = envs.make("point_mass", episode_length=5)
    _, traj = jax.jit(make_random_rollout(env, 3, 7))(jax.random.PRNGKey(0))
    done, trunc = np.asarray(traj.done), np.asarray(traj.truncation)
    np.testing.assert_array_equal(done[:4], 0.0)
    np.testing.assert_array_equal(done[4], 1.0)
    np.testing.assert_array_equal(trunc[4], 1.0)  # a time limit, not a termination
    np.testing.assert_array_equal(trunc[:4], 0.0)
    assert envs.make("point_mass").episode_length == 50
    assert envs.make("cartpole_swingup").episode_length == 200


def test_cartpole_balance_terminates_without_truncation():
    env = envs.make("cartpole_balance")
    _, traj = jax.jit(make_random_rollout(env, 16, 60))(jax.random.PRNGKey(1))
    done, trunc = np.asarray(traj.done), np.asarray(traj.truncation)
    assert done.sum() > 0  # random policies drop the pole within 60 steps
    np.testing.assert_array_equal(trunc, 0.0)
    x, th = np.asarray(traj.next_obs[..., 0]), np.asarray(traj.next_obs[..., 2])
    fell = (np.abs(x) > 2.4) | (np.abs(th) > np.deg2rad(12.0))
    np.testing.assert_array_equal(done > 0, fell)


class _Countdown(Env):
    """Fake env: reward = step index (1, 2, ...), terminates on reaching `terminate_at`."""

    def __init__(self, terminate_at: int):
        self.terminate_at = terminate_at

    def reset(self, rng):
        zero = jnp.zeros(())
        return State(pipeline_state=zero, obs=jnp.zeros(1), reward=zero, done=zero)

    def step(self, state, action):
        t = state.pipeline_state + 1.0
        return state.replace(
            pipeline_state=t, obs=jnp.stack([t]) + action, reward=t,
            done=(t >= self.terminate_at).astype(jnp.float32),
        )

    observation_size = 1
    action_size = 1


def test_termination_at_time_limit_is_not_truncation():
    env = EpisodeWrapper(_Countdown(terminate_at=3), episode_length=3)
    state = env.reset(jax.random.PRNGKey(0))
    for _ in range(3):
        state = env.step(state, jnp.zeros(1))
    assert float(state.done) == 1.0 and float(state.info["truncation"]) == 0.0


def test_action_repeat_sums_rewards_and_stops_at_termination():
    # Sums rewards of the repeated steps: 1 + 2 + 3, then 4 + 5 + 6.
    env = EpisodeWrapper(_Countdown(terminate_at=100), episode_length=100, action_repeat=3)
    state = env.reset(jax.random.PRNGKey(0))
    state = jax.jit(env.step)(state, jnp.zeros(1))
    assert float(state.reward) == 6.0 and float(state.info["steps"]) == 3.0
    state = jax.jit(env.step)(state, jnp.zeros(1))
    assert float(state.reward) == 15.0
    # Termination inside a repeat: no reward after it and the state stays at the terminal one.
    env = EpisodeWrapper(_Countdown(terminate_at=2), episode_length=100, action_repeat=3)
    state = jax.jit(env.step)(env.reset(jax.random.PRNGKey(0)), jnp.zeros(1))
    assert float(state.reward) == 3.0 and float(state.done) == 1.0
    assert float(state.pipeline_state) == 2.0 and float(state.info["truncation"]) == 0.0


def test_action_repeat_matches_repeated_single_steps():
    env1, env3 = envs.make("point_mass"), envs.make("point_mass", action_repeat=3)
    s1 = s3 = env1.reset(jax.random.PRNGKey(0))
    a = jnp.array([0.7])
    total = 0.0
    for _ in range(3):
        s1 = env1.step(s1, a)
        total += float(s1.reward)
    s3 = env3.step(s3, a)
    np.testing.assert_allclose(s3.obs, s1.obs, rtol=1e-6)
    np.testing.assert_allclose(float(s3.reward), total, rtol=1e-5)
    # episode_length counts env steps: 50 steps at repeat 3 -> done after 17 agent steps.
    _, traj = jax.jit(make_random_rollout(env3, 1, 17))(jax.random.PRNGKey(0))
    assert np.asarray(traj.done)[:16].sum() == 0 and np.asarray(traj.done)[16, 0] == 1.0


def test_brax_wrappers_and_env_objective_accept_own_tasks():
    from brax.envs.base import State as BraxState
    from brax.envs.wrappers import training

    from mbjax.rollout import make_env_objective

    assert [f.name for f in dataclasses.fields(State)] == [
        f.name for f in dataclasses.fields(BraxState)
    ]
    env = training.AutoResetWrapper(training.VmapWrapper(envs.make("point_mass", episode_length=4)))
    state = env.reset(jax.random.split(jax.random.PRNGKey(0), 2))
    for _ in range(4):
        state = env.step(state, jnp.ones((2, 1)))
    assert np.all(np.asarray(state.done) == 1.0)
    state = env.step(state, jnp.ones((2, 1)))  # auto-reset restarted the episode
    assert np.all(np.asarray(state.info["steps"]) == 1.0)

    base = envs.make("point_mass")
    objective = make_env_objective(base)(base.reset(jax.random.PRNGKey(0)))
    returns = jax.jit(objective)(jnp.stack([jnp.ones((5, 1)), -jnp.ones((5, 1))]))
    assert returns.shape == (2,) and float(returns[0]) > float(returns[1])  # goal is at +1


# ----------------------------------------------------------------------------- task functions


def _assert_agreement(name: str, traj, reward_atol: float, reward_rtol: float = 0.0):
    fns = envs.task_fns(name)
    alive = traj.alive > 0
    reward = np.asarray(jax.jit(fns.reward_fn)(traj.obs, traj.action, traj.next_obs))
    assert reward.shape == traj.reward.shape
    err = np.abs(reward - traj.reward)[alive]
    bound = reward_atol + reward_rtol * np.abs(traj.reward[alive])
    assert np.all(err <= bound), (name, err.max())
    term = np.asarray(fns.termination_fn(traj.obs, traj.action, traj.next_obs)).astype(bool)
    env_term = (traj.done * (1.0 - traj.truncation)) > 0
    np.testing.assert_array_equal(term[alive], env_term[alive])
    # Unbatched call: one transition -> scalar.
    one = fns.reward_fn(traj.obs[0, 0], traj.action[0, 0], traj.next_obs[0, 0])
    assert np.shape(one) == ()
    return err


@pytest.mark.parametrize("name", OWN)
def test_own_task_fns_match_env(name):
    env = envs.make(name)
    # Actions drawn from [-2, 2] so that the reward's clipping is exercised too.
    _, traj = jax.jit(make_random_rollout(env, BATCH, STEPS, action_scale=2.0))(
        jax.random.PRNGKey(0)
    )
    _assert_agreement(name, jax.tree.map(np.asarray, traj), reward_atol=1e-6, reward_rtol=1e-5)


def test_pendulum_cosine_reward_task_fns():
    env = envs.make("pendulum_swingup", reward_type="cosine")
    _, traj = jax.jit(make_random_rollout(env, 4, 20))(jax.random.PRNGKey(0))
    traj = jax.tree.map(np.asarray, traj)
    fns = envs.pendulum_swingup_task_fns("cosine")
    r = np.asarray(fns.reward_fn(traj.obs, traj.action, traj.next_obs))
    np.testing.assert_allclose(r, traj.reward, atol=1e-5)
    assert not np.allclose(r, envs.task_fns("pendulum_swingup").reward_fn(
        traj.obs, traj.action, traj.next_obs))


@pytest.mark.parametrize("name", HEAVY)
def test_heavy_env_protocol(name):
    env = _env(name)
    traj = _rollout(name)
    obs_dim, act_dim = env.observation_size, env.action_size
    assert traj.obs.shape == (STEPS, BATCH, obs_dim)
    assert traj.action.shape == (STEPS, BATCH, act_dim)
    for x in (traj.reward, traj.done, traj.truncation):
        assert x.shape == (STEPS, BATCH) and x.dtype == np.float32
    assert traj.obs.dtype == np.float32 and np.all(np.isfinite(traj.obs))
    # Deterministic from the key (same compiled program, no retrace); other keys differ.
    again = jax.tree.map(np.asarray, _rollout_fn(name)(jax.random.PRNGKey(0))[1])
    np.testing.assert_array_equal(traj.obs, again.obs)
    np.testing.assert_array_equal(traj.reward, again.reward)
    other = jax.tree.map(np.asarray, _rollout_fn(name)(jax.random.PRNGKey(1))[1])
    assert not np.allclose(traj.obs[0], other.obs[0])
    assert env.backend == ("generalized" if name.startswith("brax/") else "mjx")


@pytest.mark.parametrize("name", HEAVY)
def test_heavy_task_fns_match_env(name):
    fns = envs.task_fns(name)
    if fns.reward_is_exact:  # tight relative bound: DMC swing-up rewards are ~1e-4 at the start
        err = _assert_agreement(name, _rollout(name), reward_atol=1e-6, reward_rtol=1e-5)
    else:
        bound = 2.0 * MEASURED_MAX_ABS_ERROR[name]
        err = _assert_agreement(name, _rollout(name), reward_atol=bound)
    if not fns.reward_is_exact:
        # The estimate is informative: its error is well below the reward's own spread.
        assert err.mean() < 0.5 * np.std(_rollout(name).reward), (name, err.mean())


def test_brax_inverted_pendulum_clips_actions_and_terminates():
    env = _env("brax/inverted_pendulum")
    traj = _rollout("brax/inverted_pendulum")
    assert traj.done.sum() > 0 and traj.truncation.sum() == 0  # falls: termination only
    step = jax.jit(env.step)
    state = env.reset(jax.random.PRNGKey(0))
    a = step(state, jnp.array([5.0]))
    b = step(state, jnp.array([1.0]))
    np.testing.assert_array_equal(a.obs, b.obs)
    assert isinstance(a.reward, jax.Array) and a.reward.dtype == jnp.float32


def test_dmc_adapter_is_brax_state_with_truncation():
    from brax.envs.base import State as BraxState

    name = "dmc/CartpoleSwingup"
    state = jax.eval_shape(_env(name).reset, jax.random.PRNGKey(0))
    assert isinstance(state, BraxState) and hasattr(state.pipeline_state, "qpos")
    traj = _rollout(name)  # episode_length=30: steps 30.. are past the time limit
    np.testing.assert_array_equal(traj.done[:29], 0.0)
    np.testing.assert_array_equal(traj.done[29:], 1.0)
    np.testing.assert_array_equal(traj.truncation[29:], 1.0)
    assert traj.alive[29:30].all() and not traj.alive[30:].any()


# ----------------------------------------------------------------------------- action shapes

# Own tasks plus one cheap env of each heavy family; the check runs at trace time, so
# `jax.eval_shape` (nothing compiled or run) is enough to see it.
SHAPE_ENVS = OWN + ["brax/inverted_pendulum", "dmc/CartpoleSwingup"]


def _bad_actions(action_size: int) -> list:
    """A batch of 4 (or 4 entries for a 1-D action), a [1, A] row, a scalar, a [A + 1]."""
    return [jnp.zeros((4,) if action_size == 1 else (4, action_size)),
            jnp.zeros((1, action_size)), 0.0, jnp.zeros((action_size + 1,))]


@pytest.mark.parametrize("name", SHAPE_ENVS)
def test_step_rejects_wrong_action_shapes(name):
    env = _env(name)
    state = jax.eval_shape(env.reset, jax.random.PRNGKey(0))
    for action in _bad_actions(env.action_size):
        shape = tuple(jnp.shape(action))
        with pytest.raises(ValueError) as err:
            jax.eval_shape(env.step, state, action)
        msg = str(err.value)
        assert "\n" not in msg and f"action.shape={shape}" in msg
        assert f"allowed: ({env.action_size},)" in msg and "jax.vmap" in msg
    if name in OWN:  # the right shape steps, one env or a vmapped batch
        out = jax.eval_shape(env.step, state, jnp.zeros((env.action_size,)))
        assert out.obs.shape == (env.observation_size,)
        batch = jax.eval_shape(jax.vmap(env.reset), jax.random.split(jax.random.PRNGKey(0), 3))
        out = jax.eval_shape(jax.vmap(env.step), batch, jnp.zeros((3, env.action_size)))
        assert out.obs.shape == (3, env.observation_size)
