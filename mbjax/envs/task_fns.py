"""Reward and termination functions for planning with a known reward.

`task_fns(name) -> TaskFns(reward_fn, termination_fn, reward_is_exact, note)` where
`reward_fn(obs, action, next_obs) -> [...]` and `termination_fn(obs, action, next_obs) -> [...]`
(bool) work on any leading axes (`obs: [..., obs_dim]`, `action: [..., A]`). Actions are clipped to
[-1, 1] first, as the environments do. Termination is "done without truncation".

They are tested against each environment's own reward/termination on random-policy transitions
(tests/test_envs.py). Where the reward needs a quantity the observation lacks (Brax locomotion's
forward reward is the torso's x displacement over the step; DMC's speed sensors are centre-of-mass
velocities), the function is the best observation-based estimate and `reward_is_exact` is False;
`note` states the estimate; `MEASURED_MAX_ABS_ERROR` the error measured on random-policy
transitions (8 envs x 40 steps, seed 0, as in tests/test_envs.py).

Nothing here imports Brax or Playground at import time (dmc/CheetahRun's reward_fn imports MuJoCo
when first called).
"""

from __future__ import annotations

import functools
import math
from typing import Callable, NamedTuple

import jax.numpy as jnp

from mbjax.envs.tasks.cartpole_balance import (
    cartpole_balance_reward,
    cartpole_balance_termination,
)
from mbjax.envs.tasks.cartpole_swingup import cartpole_swingup_reward
from mbjax.envs.tasks.pendulum_swingup import pendulum_reward
from mbjax.envs.tasks.point_mass import point_mass_reward
from mbjax.envs.tolerance import tolerance

TaskFn = Callable[[jnp.ndarray, jnp.ndarray, jnp.ndarray], jnp.ndarray]


class TaskFns(NamedTuple):
    """Planning functions of one task (see module docstring for shapes)."""

    reward_fn: TaskFn
    termination_fn: TaskFn
    reward_is_exact: bool
    note: str


def _never(obs, action, next_obs):
    del obs, action
    return jnp.zeros(next_obs.shape[:-1], bool)


def _nan_obs(obs, action, next_obs):
    """Playground DMC envs terminate only when the physics produced NaN."""
    del obs, action
    return jnp.any(jnp.isnan(next_obs), axis=-1)


def _sq_action(action):
    return jnp.sum(jnp.square(jnp.clip(action, -1.0, 1.0)), axis=-1)


def _mid_velocity(obs, next_obs, idx):
    """Estimate of the mean forward velocity over a step from the observed start/end velocities."""
    return 0.5 * (obs[..., idx] + next_obs[..., idx])


# ---------------------------------------------------------------- Brax (generalized backend)

def _brax_inverted_pendulum_reward(obs, action, next_obs):
    del obs, action
    return jnp.ones(next_obs.shape[:-1], next_obs.dtype)


def _brax_inverted_pendulum_termination(obs, action, next_obs):
    del obs, action
    return jnp.abs(next_obs[..., 1]) > 0.2


def _brax_halfcheetah_reward(obs, action, next_obs):
    # obs = [q[1:] (8), qd (9)]; qd[0] (rootx velocity) sits at index 8.
    return _mid_velocity(obs, next_obs, 8) - 0.1 * _sq_action(action)


def _brax_hopper_reward(obs, action, next_obs):
    # obs = [z, q[2:] (4), clip(qd, -10, 10) (6)]; healthy reward is 1 on every step.
    return _mid_velocity(obs, next_obs, 5) + 1.0 - 1e-3 * _sq_action(action)


def _brax_hopper_termination(obs, action, next_obs):
    del obs, action
    z, angle = next_obs[..., 0], next_obs[..., 1]
    # |q[2:]| < 100 is checked on the observed joint angles; the |qd| < 100 part cannot be (obs
    # velocities are clipped to +-10), which random and sane policies never reach.
    healthy = jnp.all(jnp.abs(next_obs[..., 1:5]) < 100.0, axis=-1)
    healthy &= (z > 0.7) & (angle > -0.2) & (angle < 0.2)
    return ~healthy


def _brax_walker2d_reward(obs, action, next_obs):
    # obs = [z, q[2:] (7), clip(qd, -10, 10) (9)]; qd[0] at index 8.
    return _mid_velocity(obs, next_obs, 8) + 1.0 - 1e-3 * _sq_action(action)


def _brax_walker2d_termination(obs, action, next_obs):
    del obs, action
    z, angle = next_obs[..., 0], next_obs[..., 1]
    return ~((z > 0.8) & (z < 2.0) & (angle > -1.0) & (angle < 1.0))


def _brax_ant_reward(obs, action, next_obs):
    # obs = [q[2:] (13): z, quat, joints; qd (14)]; qd[0] (free-joint x velocity) at index 13.
    return _mid_velocity(obs, next_obs, 13) + 1.0 - 0.5 * _sq_action(action)


def _brax_ant_termination(obs, action, next_obs):
    del obs, action
    z = next_obs[..., 0]
    return (z < 0.2) | (z > 1.0)


def _brax_reacher_reward(obs, action, next_obs):
    del obs
    # obs[-3:] is the tip-to-target vector of the new state.
    return -jnp.linalg.norm(next_obs[..., -3:], axis=-1) - _sq_action(action)


# ---------------------------------------------------------------- DMC (MuJoCo Playground)

def _dmc_cartpole_reward(obs, action, next_obs):
    # obs = [cart x, cos(pole), sin(pole), cart xdot, pole thdot]
    del obs
    upright = (next_obs[..., 1] + 1.0) / 2.0
    centered = (1.0 + tolerance(next_obs[..., 0], margin=2.0)) / 2.0
    a = jnp.clip(action[..., 0], -1.0, 1.0)
    small_control = (4.0 + tolerance(a, margin=1.0, value_at_margin=0.0, sigmoid="quadratic")) / 5.0
    small_velocity = (1.0 + tolerance(next_obs[..., 4], margin=5.0)) / 2.0
    return upright * centered * small_control * small_velocity


def _dmc_cartpole_sparse_reward(obs, action, next_obs):
    del obs, action
    cart = tolerance(next_obs[..., 0], bounds=(-0.25, 0.25))
    angle = tolerance(next_obs[..., 1], bounds=(0.995, 1.0))
    return cart * angle


@functools.lru_cache(maxsize=None)
def _cheetah_model():
    """MJX model of DMC cheetah and the sensordata address of its `torso_subtreelinvel` sensor."""
    import jax
    from mujoco_playground import dm_control_suite

    # The first call may happen inside a jit trace: build concrete arrays, not cached tracers.
    with jax.ensure_compile_time_eval():
        env = dm_control_suite.load("CheetahRun", config_overrides={"impl": "jax"})
    sensor = env.mj_model.sensor("torso_subtreelinvel").id
    return env.mjx_model, int(env.mj_model.sensor_adr[sensor])


def _dmc_cheetah_reward(obs, action, next_obs):
    """Speed reward of dmc/CheetahRun, exact.

    The env scores the torso-subtree centre-of-mass x velocity, a sensor that MuJoCo evaluates in
    the forward pass *before* integrating, i.e. at the transition's start state (one physics
    step per control step in the default config: ctrl_dt == sim_dt). Velocities do not depend on
    the unobserved x position, so MJX kinematics on `obs` = [qpos[1:] (8), qvel (9)] (x set to 0)
    reproduces it. Imports MuJoCo lazily; costs about one forward-kinematics pass per transition.
    """
    del action, next_obs
    import jax
    from mujoco import mjx

    model, adr = _cheetah_model()

    def speed(o):
        data = mjx.make_data(model)
        data = data.replace(qpos=jnp.concatenate([jnp.zeros(1, o.dtype), o[:8]]), qvel=o[8:])
        data = mjx.kinematics(model, data)
        data = mjx.com_pos(model, data)
        data = mjx.com_vel(model, data)
        data = mjx.sensor_vel(model, data)
        return data.sensordata[adr]  # x component

    flat = obs.reshape((-1, obs.shape[-1]))
    vx = jax.vmap(speed)(flat).reshape(obs.shape[:-1])
    return tolerance(
        vx, bounds=(10.0, math.inf), margin=10.0, value_at_margin=0.0, sigmoid="linear"
    )


_PENDULUM_COS_BOUND = math.cos(math.radians(8.0))


def _dmc_pendulum_reward(obs, action, next_obs):
    # obs = [xz, zz, angular velocity]; reward 1 while the pole is within 8 deg of upright.
    del obs, action
    return tolerance(next_obs[..., 1], bounds=(_PENDULUM_COS_BOUND, 1.0))


def _dmc_reacher_reward(radius: float) -> TaskFn:
    def reward_fn(obs, action, next_obs):
        # obs = [qpos (2), finger-to-target xy (2), qvel (2)]; radius = target + finger radii.
        del obs, action
        return tolerance(jnp.linalg.norm(next_obs[..., 2:4], axis=-1), bounds=(0.0, radius))

    return reward_fn


# ---------------------------------------------------------------- table

_EXACT = "exact (float32 round-off)"

_TASKS: dict[str, TaskFns] = {
    "cartpole_swingup": TaskFns(
        lambda o, a, n: cartpole_swingup_reward(o, a, n), _never, True, _EXACT
    ),
    "cartpole_balance": TaskFns(
        cartpole_balance_reward, cartpole_balance_termination, True, _EXACT
    ),
    # CartPole-v1 with two actions: the same reward and termination (actions enter one-hot).
    "cartpole_discrete": TaskFns(
        cartpole_balance_reward, cartpole_balance_termination, True, _EXACT
    ),
    "pendulum_swingup": TaskFns(
        lambda o, a, n: pendulum_reward(o, a, n), _never, True,
        _EXACT + "; for reward_type='quadratic' (default). Use "
        "pendulum_swingup_task_fns(reward_type) for 'cosine'.",
    ),
    "point_mass": TaskFns(lambda o, a, n: point_mass_reward(o, a, n), _never, True, _EXACT),
    "brax/inverted_pendulum": TaskFns(
        _brax_inverted_pendulum_reward, _brax_inverted_pendulum_termination, True, _EXACT
    ),
    "brax/reacher": TaskFns(_brax_reacher_reward, _never, True, _EXACT),
    "brax/halfcheetah": TaskFns(
        _brax_halfcheetah_reward, _never, False,
        "forward reward = torso x displacement / dt, not observed; estimated by the mean of the "
        "observed rootx velocity at both ends of the step. Ctrl cost exact.",
    ),
    "brax/hopper": TaskFns(
        _brax_hopper_reward, _brax_hopper_termination, False,
        "forward velocity estimated as for halfcheetah (observed velocities are clipped to +-10); "
        "termination exact except the unobservable abs(qd) < 100 check.",
    ),
    "brax/walker2d": TaskFns(
        _brax_walker2d_reward, _brax_walker2d_termination, False,
        "forward velocity estimated as for halfcheetah (clipped obs velocities); termination "
        "exact.",
    ),
    "brax/ant": TaskFns(
        _brax_ant_reward, _brax_ant_termination, False,
        "forward velocity estimated from the free joint's observed x velocity (mean of both "
        "ends of the step); termination exact.",
    ),
    "dmc/CartpoleSwingup": TaskFns(_dmc_cartpole_reward, _nan_obs, True, _EXACT),
    "dmc/CartpoleBalance": TaskFns(_dmc_cartpole_reward, _nan_obs, True, _EXACT),
    "dmc/CartpoleSwingupSparse": TaskFns(_dmc_cartpole_sparse_reward, _nan_obs, True, _EXACT),
    "dmc/CartpoleBalanceSparse": TaskFns(_dmc_cartpole_sparse_reward, _nan_obs, True, _EXACT),
    "dmc/CheetahRun": TaskFns(
        _dmc_cheetah_reward, _nan_obs, True,
        _EXACT + "; the speed sensor (subtree COM velocity, evaluated at the step's start state) "
        "is recomputed from `obs` with MJX kinematics (imports MuJoCo; assumes ctrl_dt == sim_dt, "
        "the default). Using the observed root x velocity instead errs by up to 0.065.",
    ),
    "dmc/PendulumSwingup": TaskFns(_dmc_pendulum_reward, _nan_obs, True, _EXACT),
    "dmc/ReacherEasy": TaskFns(_dmc_reacher_reward(0.05 + 0.01), _nan_obs, True, _EXACT),
    "dmc/ReacherHard": TaskFns(_dmc_reacher_reward(0.015 + 0.01), _nan_obs, True, _EXACT),
}


def task_names() -> list[str]:
    """Names that have task functions."""
    return list(_TASKS)


def task_fns(name: str) -> TaskFns:
    """Reward/termination functions for planning on environment `name` (default kwargs).

    Raises ValueError for an env without task functions, listing those that have them.
    """
    if name not in _TASKS:
        from mbjax.envs.registry import check_name

        check_name(name)  # unknown names get the registry's message and close-match hint
        raise ValueError(
            f"Environment {name!r} has no task functions; available for: {task_names()}"
        )
    return _TASKS[name]


def resolve_task(
    env_name: str,
    learned_reward: bool,
    learned_termination: bool,
    use_estimated_reward: bool = False,
) -> tuple[TaskFn | None, TaskFn | None]:
    """The known (reward_fn, termination_fn) a model-based agent plans or imagines with.

    Each is None where the model learns it (learned_reward / learned_termination). A reward that
    cannot be computed exactly from observations (`TaskFns.reward_is_exact` False) is only used
    with use_estimated_reward=True; otherwise ValueError names the env and the way out. Envs
    without task functions raise `task_fns`' error (only when a known function is asked for).
    """
    if learned_reward and learned_termination:
        return None, None
    task = task_fns(env_name)
    reward_fn = None
    if not learned_reward:
        if not task.reward_is_exact and not use_estimated_reward:
            raise ValueError(
                f"env {env_name!r}: its reward cannot be computed exactly from observations "
                f"({task.note}); use learned_reward=True with model.predict_reward=True, or "
                "use_estimated_reward=True to use the estimate"
            )
        reward_fn = task.reward_fn
    termination_fn = None if learned_termination else task.termination_fn
    return reward_fn, termination_fn


def pendulum_swingup_task_fns(reward_type: str = "quadratic") -> TaskFns:
    """Task functions for `make('pendulum_swingup', reward_type=...)`."""
    from mbjax.envs.tasks.pendulum_swingup import REWARD_TYPES

    if reward_type not in REWARD_TYPES:
        raise ValueError(f"reward_type={reward_type!r} is not one of {REWARD_TYPES}")
    return TaskFns(
        lambda o, a, n: pendulum_reward(o, a, n, reward_type=reward_type), _never, True, _EXACT
    )


# ---------------------------------------------------------------- exactness table (README)

# Max |reward_fn - env reward| on random-policy transitions (8 envs x 40 steps, seed 0, default
# kwargs, CPU); tests/test_envs.py reruns exactly this setting and asserts 2x these bounds for the
# estimates (and a tight relative bound for the exact ones).
MEASURED_MAX_ABS_ERROR: dict[str, float] = {
    "cartpole_swingup": 3.2e-8,
    "cartpole_balance": 0.0,
    "cartpole_discrete": 0.0,
    "pendulum_swingup": 3.8e-6,  # rewards ~ -10
    "point_mass": 4.8e-7,
    "brax/inverted_pendulum": 0.0,
    "brax/reacher": 1.2e-7,
    "brax/halfcheetah": 0.642,  # mean 0.184; mean |reward| 0.52
    "brax/hopper": 0.0406,  # mean 0.0102; mean |reward| 0.71
    "brax/walker2d": 0.0893,  # mean 0.0309; mean |reward| 0.46
    "brax/ant": 0.656,  # mean 0.082; mean |reward| 0.62
    "dmc/CartpoleSwingup": 2.3e-10,  # rewards ~2e-4 while hanging
    "dmc/CartpoleBalance": 1.2e-7,
    "dmc/CartpoleSwingupSparse": 0.0,
    "dmc/CartpoleBalanceSparse": 0.0,
    "dmc/CheetahRun": 0.0,
    "dmc/PendulumSwingup": 0.0,  # random policies never reach upright: all rewards were 0
    "dmc/ReacherEasy": 0.0,
    "dmc/ReacherHard": 0.0,
}

_FAMILY = {"brax/": "Brax", "dmc/": "Playground DMC"}


def _family(name: str) -> str:
    for prefix, fam in _FAMILY.items():
        if name.startswith(prefix):
            return fam
    return "mbjax"


TASK_TABLE: tuple[dict, ...] = tuple(
    {
        "env": name,
        "family": _family(name),
        "reward_is_exact": fns.reward_is_exact,
        "measured_max_abs_error": MEASURED_MAX_ABS_ERROR.get(name),
        "note": fns.note,
    }
    for name, fns in _TASKS.items()
)


def describe() -> str:
    """Markdown table of every env with task functions: family, reward exactness, error, note."""
    rows = [
        "| env | family | reward exact | max abs reward error (random policy) | note |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in TASK_TABLE:
        err = row["measured_max_abs_error"]
        err_s = "n/a" if err is None else f"{err:.2g}"
        exact = "yes" if row["reward_is_exact"] else "no (estimate)"
        rows.append(f"| `{row['env']}` | {row['family']} | {exact} | {err_s} | {row['note']} |")
    return "\n".join(rows)
