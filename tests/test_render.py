"""mbjax.render (pure-JAX renderers), the pixel env wrapper, uint8 replay and write_video."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mbjax import acting, envs, render, replay
from mbjax.render import scenes

OWN = ("cartpole_swingup", "cartpole_balance", "pendulum_swingup", "point_mass")
Q_SIZE = {"cartpole_swingup": 4, "cartpole_balance": 4, "pendulum_swingup": 2, "point_mass": 2}


def _draw(name, q, size=64):
    # render() caches one jitted renderer per (name, size): one compile per task for the file.
    return np.asarray(render.render(name, jnp.asarray(q, jnp.float32), size))


def _centroid(image, color, tol=40):
    """(row, col) centroid of the pixels within `tol` of `color` (RGB in [0, 1]) per channel."""
    target = np.round(np.asarray(color) * 255.0)
    mask = np.all(np.abs(image.astype(np.float32) - target) <= tol, axis=-1)
    assert mask.sum() > 0, f"no pixel of colour {color}"
    rows, cols = np.nonzero(mask)
    return rows.mean(), cols.mean()


@pytest.mark.parametrize("name", OWN)
def test_shape_dtype(name):
    image = _draw(name, np.zeros(Q_SIZE[name], np.float32))
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    # A State works as well as its pipeline_state.
    state = envs.make(name).reset(jax.random.PRNGKey(0))
    assert render.render(name, state).dtype == jnp.uint8


def test_size_is_configurable():
    assert _draw("point_mass", [0.0, 0.0], size=40).shape == (40, 40, 3)


@pytest.mark.parametrize("name,x_index", [("cartpole_swingup", 0), ("cartpole_balance", 0)])
def test_cart_moves_right_with_x(name, x_index):
    cols = []
    for x in (-1.5, 0.0, 1.5):
        q = np.zeros(4, np.float32)
        q[x_index] = x
        cols.append(_centroid(_draw(name, q), scenes.CART)[1])
    assert cols[0] < cols[1] - 10 < cols[2] - 20


def test_pole_angle_moves_pole_pixels():
    # cartpole_swingup q = [x, th, xdot, thdot]; th = 0 upright, positive th tips right.
    up = _centroid(_draw("cartpole_swingup", [0.0, 0.0, 0, 0]), scenes.POLE)
    down = _centroid(_draw("cartpole_swingup", [0.0, np.pi, 0, 0]), scenes.POLE)
    right = _centroid(_draw("cartpole_swingup", [0.0, np.pi / 2, 0, 0]), scenes.POLE)
    assert up[0] < 32 - 2 < 32 + 2 < down[0]  # rail (and hinge) at row 32: above vs below
    assert right[1] > 32 + 2 and abs(right[0] - 32) < 2
    # pendulum q = [th, thdot]: the rod points where the angle says.
    p_up = _centroid(_draw("pendulum_swingup", [0.0, 0.0]), scenes.POLE)
    p_left = _centroid(_draw("pendulum_swingup", [-np.pi / 2, 0.0]), scenes.POLE)
    assert p_up[0] < 32 - 8 and abs(p_up[1] - 32) < 2
    assert p_left[1] < 32 - 8 and abs(p_left[0] - 32) < 2


def test_point_mass_dot_follows_position():
    task = envs.make("point_mass").unwrapped
    view = scenes.point_mass_scene(task).view
    for x in (-1.0, 0.0, 0.7, 2.0):
        _, col = _centroid(_draw("point_mass", [x, 0.0]), scenes.MASS)
        expected = (x - (view.x - view.width / 2)) / view.width * 64 - 0.5
        assert abs(col - expected) < 1.0, (x, col, expected)


def test_jit_vmap_equals_per_state_calls():
    fn = render.make_renderer("cartpole_swingup", 32)
    qs = jax.random.normal(jax.random.PRNGKey(0), (6, 4)) * jnp.array([1.0, 3.0, 1.0, 1.0])
    batch = np.asarray(jax.jit(jax.vmap(fn))(qs))
    assert batch.shape == (6, 32, 32, 3) and batch.dtype == np.uint8
    one = jax.jit(fn)
    single = np.stack([np.asarray(one(q)) for q in qs])
    # Same maths; XLA may fuse the batched program differently, so allow one grey level.
    assert np.max(np.abs(batch.astype(int) - single.astype(int))) <= 1
    assert len({im.tobytes() for im in batch}) == 6  # different states, different images


def test_unsupported_env_raises():
    with pytest.raises(ValueError, match="no renderer"):
        render.make_renderer(object())
    assert render.renders("point_mass")


def _pixel_env(**kw):
    return envs.make("cartpole_swingup", pixels=True, image_size=32, **kw)


def test_pixel_env_obs_and_frame_stack_order():
    env = _pixel_env(frame_stack=3)
    assert env.observation_size == (32, 32, 9) and env.observation_dtype == jnp.uint8
    state = jax.jit(env.reset)(jax.random.PRNGKey(0))
    obs0 = np.asarray(state.obs)
    assert obs0.shape == (32, 32, 9) and obs0.dtype == np.uint8
    # At reset every slot holds the first frame.
    assert np.array_equal(obs0[..., 0:3], obs0[..., 6:9])
    assert np.array_equal(obs0[..., 3:6], obs0[..., 6:9])
    step = jax.jit(env.step)
    state1 = step(state, jnp.ones(1))
    state2 = step(state1, jnp.ones(1))
    obs1, obs2 = np.asarray(state1.obs), np.asarray(state2.obs)
    # The stack shifts left by one frame; the newest frame is last and renders the current state.
    assert np.array_equal(obs1[..., :6], obs0[..., 3:])
    assert np.array_equal(obs2[..., :6], obs1[..., 3:])
    assert np.array_equal(obs2[..., 6:], np.asarray(env.render_fn(state2.pipeline_state)))
    assert not np.array_equal(obs2[..., 6:], obs1[..., 6:])
    # The vector observation is kept for proprioception.
    assert state2.info["state_obs"].shape == (5,)
    with pytest.raises(ValueError, match="pixels=True"):
        envs.make("cartpole_swingup", frame_stack=2)


def test_pixel_env_rewards_match_state_env_with_action_repeat():
    state_env = envs.make("cartpole_swingup", action_repeat=2, episode_length=10)
    pixel_env = _pixel_env(frame_stack=2, action_repeat=2, episode_length=10)
    actions = jax.random.uniform(jax.random.PRNGKey(1), (6, 1), minval=-1, maxval=1)

    def run(env):
        def one(state, action):
            state = env.step(state, action)
            return state, (state.reward, state.done, state.pipeline_state)

        return jax.lax.scan(one, env.reset(jax.random.PRNGKey(3)), actions)[1]

    (r_s, d_s, q_s), (r_p, d_p, q_p) = jax.jit(run, static_argnums=0)(state_env), jax.jit(
        run, static_argnums=0)(pixel_env)
    np.testing.assert_array_equal(np.asarray(r_s), np.asarray(r_p))
    np.testing.assert_array_equal(np.asarray(d_s), np.asarray(d_p))
    np.testing.assert_array_equal(np.asarray(q_s), np.asarray(q_p))
    assert float(d_p[-1]) == 1.0  # 6 agent steps x repeat 2 > episode_length 10


def test_acting_and_replay_keep_uint8():
    env = _pixel_env(frame_stack=2, episode_length=4)
    example = acting.empty_transition(env.observation_size, env.action_size,
                                      obs_dtype=env.observation_dtype)
    buffer = replay.init(16, example)
    assert buffer.data.obs.dtype == jnp.uint8 and buffer.data.obs.shape == (16, 32, 32, 6)

    @jax.jit
    def collect(key):
        batch = acting.reset_batch(env, key, 2)

        def one(carry, k):
            batch, buffer = carry
            batch, tr = acting.step_batch(env, batch, jnp.zeros((2, 1)), k)
            return (batch, replay.add(buffer, tr)), None

        (batch, buf), _ = jax.lax.scan(one, (batch, buffer), jax.random.split(key, 5))
        return buf

    buf = collect(jax.random.PRNGKey(0))
    assert buf.data.obs.dtype == jnp.uint8 and buf.data.next_obs.dtype == jnp.uint8
    assert int(buf.size) == 10 and int(jnp.max(buf.data.obs)) > 0
    assert replay.sample(buf, jax.random.PRNGKey(1), 3).obs.dtype == jnp.uint8
    # Masked episodes (evaluation) run on images too.
    returns = acting.evaluate(env, lambda p, obs, k: jnp.zeros((obs.shape[0], 1)), None,
                              jax.random.PRNGKey(2), num_episodes=2, num_steps=5)
    assert returns.shape == (2,) and bool(jnp.all(jnp.isfinite(returns)))


def test_write_video_gif(tmp_path):
    from PIL import Image

    frames = np.stack([_draw("pendulum_swingup", [th, 0.0], 32) for th in np.linspace(0, 3, 5)])
    path = render.write_video(str(tmp_path / "sub" / "ep.gif"), frames, fps=10)
    with Image.open(path) as gif:
        assert gif.n_frames == 5 and gif.size == (32, 32)
    with pytest.raises(ValueError, match="uint8"):
        render.write_video(str(tmp_path / "x.gif"), frames.astype(np.float32), fps=10)


def _brown_centroid_col(image):
    """Column centroid of the DM Control body colour ('self' material: red > green > blue)."""
    im = image.astype(np.float32)
    mask = (im[..., 0] - im[..., 2] > 40) & (im[..., 0] > im[..., 1])
    assert mask.sum() > 0
    return np.nonzero(mask)[1].mean()


def test_dmc_cartpole_raycast_and_pixel_env():
    # One DMC env only: MJX compiles are the slow part of this file. Reward equality with the
    # state env is covered by the own-task test (same wrapper code path).
    env = envs.make("dmc/CartpoleSwingup", pixels=True, image_size=24, frame_stack=2,
                    episode_length=6)
    state = jax.jit(env.reset)(jax.random.PRNGKey(0))
    assert state.obs.shape == (24, 24, 6) and state.obs.dtype == jnp.uint8
    data = state.pipeline_state
    # Slide every geom not on the world body 0.8 m along +x (the renderer reads geom poses;
    # cheaper than compiling mjx.forward for a moved qpos).
    on_body = np.asarray(env.unwrapped.mj_model.geom_bodyid) > 0
    shift = jnp.asarray(on_body[:, None] * np.array([0.8, 0.0, 0.0]), jnp.float32)
    moved = data.replace(geom_xpos=data.geom_xpos + shift)
    fn = jax.jit(env.render_fn)
    left, right = np.asarray(fn(data)), np.asarray(fn(moved))
    np.testing.assert_array_equal(left, np.asarray(state.obs[..., 3:]))
    # The fixed camera looks along +y: world +x is image right.
    assert _brown_centroid_col(right) > _brown_centroid_col(left) + 2

    nstate = jax.jit(env.step)(state, jnp.ones(1))
    np.testing.assert_array_equal(np.asarray(nstate.obs[..., :3]), np.asarray(state.obs[..., 3:]))
    assert nstate.info["state_obs"].shape == (env.state_observation_size,)
    assert np.isfinite(float(nstate.reward))


def test_write_video_mp4_needs_ffmpeg(tmp_path):
    import mediapy

    frames = np.zeros((2, 16, 16, 3), np.uint8)
    if mediapy.video_is_available():
        assert render.write_video(str(tmp_path / "ep.mp4"), frames, fps=10).endswith(".mp4")
    else:
        with pytest.raises(RuntimeError, match="gif"):
            render.write_video(str(tmp_path / "ep.mp4"), frames, fps=10)


def test_policy_frames_show_the_scored_episode():
    env = envs.make("point_mass", episode_length=10)

    def policy(carry, obs, key):
        return carry, jnp.ones(1), {}

    def init_carry(key):
        return jnp.zeros(())

    key = jax.random.PRNGKey(5)
    frames, length = jax.jit(render.policy_frames, static_argnums=(0, 1, 2, 4, 5))(
        env, init_carry, policy, key, 12, 64)
    assert frames.shape == (13, 64, 64, 3) and frames.dtype == jnp.uint8 and int(length) == 10
    # Pushed right with a = +1 from rest: the dot moves right through the episode.
    cols = [_centroid(np.asarray(f), scenes.MASS)[1] for f in frames[: int(length) + 1]]
    assert all(b >= a for a, b in zip(cols, cols[1:], strict=False)) and cols[-1] > cols[0] + 5
    # The first frame is the reset state the scored episode starts from.
    start = acting.start_episode(env, jax.random.split(key, 3)[0]).state
    np.testing.assert_array_equal(np.asarray(frames[0]), _draw("point_mass", start.pipeline_state))
