"""Bad inputs at the API level: each gives a one-line ValueError naming the value and what is
allowed, or the correct result (non-finite data rows are masked, not silently spread).

Covered: model fit data (shapes, NaN/Inf rows), env.step action shapes, planner / propagation /
imagine arguments, configs with inf/nan numbers, and the `on_nonfinite` choice of the learners
and of Program. Everything is traced abstractly or tiny, so the file runs in seconds.
"""

from __future__ import annotations

import functools
import math
import re
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mbjax import envs, validation
from mbjax.agents import mbpo, pets, sac
from mbjax.agents.program import Program, Segment
from mbjax.agents.sac import SACConfig
from mbjax.models import EnsembleConfig, make_ensemble
from mbjax.planners import MPPIConfig, make_planner
from mbjax.rollout import PropagationConfig, imagine, propagate
from mbjax.types import Transition

OBS, ACT, ROWS = 2, 1, 64
INF, NAN = math.inf, math.nan


@functools.lru_cache(maxsize=None)
def _model(predict_reward: bool = True):
    cfg = EnsembleConfig(ensemble_size=2, hidden_sizes=(8,), batch_size=16, max_epochs=2,
                         predict_reward=predict_reward)
    return make_ensemble(cfg, OBS, ACT)


def _data(**fields: Any) -> Transition:
    """ROWS finite transitions of the model's sizes, with `fields` replaced."""
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(ROWS, OBS)).astype(np.float32)
    base = dict(obs=obs, action=rng.uniform(-1, 1, (ROWS, ACT)).astype(np.float32),
                reward=rng.normal(size=ROWS).astype(np.float32), next_obs=obs * 0.9,
                terminated=np.zeros(ROWS, np.float32), truncated=np.zeros(ROWS, np.float32))
    base.update(fields)
    return Transition(**{k: jnp.asarray(v) for k, v in base.items()})


def _fit_abstract(data: Any) -> Any:
    model = _model()
    state = jax.eval_shape(model.init, jax.random.PRNGKey(0))
    return jax.eval_shape(model.fit, state, data, jax.random.PRNGKey(1))


def _step(env_name: str, action: Any) -> Any:
    env = envs.make(env_name)
    state = jax.eval_shape(env.reset, jax.random.PRNGKey(0))
    return jax.eval_shape(env.step, state, action)


def _propagate(obs_shape: tuple, actions_shape: tuple) -> Any:
    model = _model()
    state = jax.eval_shape(model.init, jax.random.PRNGKey(0))
    return jax.eval_shape(
        lambda s: propagate(model, PropagationConfig(num_particles=2), s, jnp.zeros(obs_shape),
                            jnp.zeros(actions_shape), jax.random.PRNGKey(0)), state)


def _imagine(starts_shape: tuple) -> Any:
    model = _model()
    state = jax.eval_shape(model.init, jax.random.PRNGKey(0))
    policy = lambda params, obs, key: jnp.zeros(obs.shape[:-1] + (ACT,))
    return jax.eval_shape(lambda s: imagine(model, s, policy, None, jnp.zeros(starts_shape), 3,
                                            jax.random.PRNGKey(0)), state)


def _program(on_nonfinite: Any) -> Program:
    return Program(lambda key: {"key": key}, (Segment(lambda s: (s, {}), 1),),
                   lambda i, m: {}, on_nonfinite=on_nonfinite)


# (id, call, regex the one-line message must match)
BAD: list[tuple[str, Callable[[], Any], str]] = [
    # Model fit: data shapes.
    ("fit_obs_size", lambda: _fit_abstract(_data(obs=np.zeros((ROWS, 3)))),
     r"fit: data\.obs\.shape=\(64, 3\) is invalid; allowed: \(64, 2\)"),
    ("fit_action_size", lambda: _fit_abstract(_data(action=np.zeros((ROWS, 2)))),
     r"data\.action\.shape=\(64, 2\) is invalid; allowed: \(64, 1\)"),
    ("fit_next_obs_rows", lambda: _fit_abstract(_data(next_obs=np.zeros((ROWS - 1, OBS)))),
     r"data\.next_obs\.shape=\(63, 2\) is invalid; allowed: \(64, 2\)"),
    ("fit_reward_column", lambda: _fit_abstract(_data(reward=np.zeros((ROWS, 1)))),
     r"data\.reward\.shape=\(64, 1\) is invalid; allowed: \(64,\)"),
    ("fit_terminated_2d", lambda: _fit_abstract(_data(terminated=np.zeros((ROWS, 2)))),
     r"data\.terminated\.shape=\(64, 2\) is invalid; allowed: \(64,\)"),
    ("fit_not_a_transition", lambda: _fit_abstract({"obs": np.zeros((ROWS, OBS))}),
     r"fit: data must be a ReplayBuffer of Transition or a Transition"),
    # env.step: one action of shape [action_size].
    ("step_batch_of_4", lambda: _step("point_mass", jnp.zeros(4)),
     r"env\.step: action\.shape=\(4,\) is invalid; allowed: \(1,\)"),
    ("step_row", lambda: _step("point_mass", jnp.zeros((1, 1))),
     r"action\.shape=\(1, 1\) is invalid; allowed: \(1,\).*jax\.vmap"),
    ("step_scalar", lambda: _step("point_mass", 0.5),
     r"action\.shape=\(\) is invalid; allowed: \(1,\)"),
    ("step_too_long", lambda: _step("cartpole_swingup", jnp.zeros(2)),
     r"action\.shape=\(2,\) is invalid; allowed: \(1,\)"),
    # Planners.
    ("planner_unknown", lambda: make_planner("cmaes"),
     r"unknown planner 'cmaes': known planners are \['cem'"),
    ("planner_population_0", lambda: make_planner("cem", population=0),
     r"CEMConfig\.population=0 is invalid"),
    ("planner_alpha_nan", lambda: make_planner("cem", alpha=NAN),
     r"CEMConfig\.alpha=nan is invalid; allowed: a number in \[0"),
    ("planner_wrong_config", lambda: make_planner("cem", MPPIConfig()),
     r"config for planner 'cem' is a MPPIConfig: allowed is CEMConfig"),
    ("ilqr_reg_negative", lambda: make_planner("ilqr", reg_init=-1.0),
     r"ILQRConfig\.reg_init=-1\.0 is invalid; allowed: a number >= 0"),
    ("ilqr_horizon_0", lambda: make_planner("ilqr", horizon=0),
     r"ILQRConfig\.horizon=0 is invalid; allowed: an int >= 1"),
    ("ilqr_bare_objective", lambda: make_planner("ilqr", horizon=2).plan(
        make_planner("ilqr", horizon=2).init(1, jax.random.PRNGKey(0)), lambda a: a.sum((1, 2)),
        None, jax.random.PRNGKey(0)),
     r"problem='function' is invalid; allowed: a problem with x0, step and reward"),
    # Propagation and imagination.
    ("propagation_particles_0", lambda: PropagationConfig(num_particles=0),
     r"PropagationConfig\.num_particles=0 is invalid; allowed: an int >= 1"),
    ("propagation_risk", lambda: PropagationConfig(risk="median"),
     r"PropagationConfig\.risk='median' is invalid; allowed: one of"),
    ("propagation_risk_k_inf", lambda: PropagationConfig(risk_k=INF),
     r"PropagationConfig\.risk_k=inf is invalid; allowed: a number >= 0"),
    ("propagate_obs_batch", lambda: _propagate((4, OBS), (8, 5, ACT)),
     r"propagate: obs must be \[2\] \(vmap for batches\), got \(4, 2\)"),
    ("propagate_actions_2d", lambda: _propagate((OBS,), (8, ACT)),
     r"propagate: actions must be \[N, H, 1\], got \(8, 1\)"),
    ("imagine_starts_1d", lambda: _imagine((OBS,)),
     r"imagine: starts must be \[N, 2\], got \(2,\)"),
    # Configs with inf / nan numbers.
    ("ensemble_lr_inf", lambda: EnsembleConfig(learning_rate=INF),
     r"EnsembleConfig\.learning_rate=inf is invalid; allowed: a number > 0"),
    ("ensemble_lr_nan", lambda: EnsembleConfig(learning_rate=NAN),
     r"EnsembleConfig\.learning_rate=nan is invalid"),
    ("ensemble_logvar_inf", lambda: EnsembleConfig(max_logvar_init=INF),
     r"EnsembleConfig\.max_logvar_init=inf is invalid; allowed: a finite number"),
    ("sac_actor_lr_inf", lambda: SACConfig(actor_lr=INF),
     r"SACConfig\.actor_lr=inf is invalid; allowed: a number > 0"),
    ("sac_discount_nan", lambda: SACConfig(discount=NAN),
     r"SACConfig\.discount=nan is invalid; allowed: a number in \[0"),
    ("mbpo_real_ratio_nan", lambda: mbpo.Config(real_ratio=NAN),
     r"Config\.real_ratio=nan is invalid"),
    ("check_float_inf", lambda: validation.check_float("x", INF), r"x=inf is invalid"),
    ("check_float_neg_inf", lambda: validation.check_float("x", -INF, 0.0),
     r"x=-inf is invalid; allowed: a number >= 0"),
    ("check_float_nan", lambda: validation.check_float("x", NAN, 0.0, 1.0),
     r"x=nan is invalid; allowed: a number in \[0\.0, 1\.0\]"),
    ("check_float_np_inf", lambda: validation.check_float("x", np.float64("inf")),
     r"x=.*inf.* is invalid; allowed: a finite number"),
    # on_nonfinite: "raise" or "rollback".
    ("pets_on_nonfinite", lambda: pets.Config(on_nonfinite="skip"),
     r"Config\.on_nonfinite='skip' is invalid; allowed: one of \['raise', 'rollback'\]"),
    ("sac_on_nonfinite", lambda: sac.Config(on_nonfinite="ignore"),
     r"Config\.on_nonfinite='ignore' is invalid; allowed: one of \['raise', 'rollback'\]"),
    ("mbpo_on_nonfinite", lambda: mbpo.Config(on_nonfinite=True),
     r"Config\.on_nonfinite=True is invalid; allowed: one of \['raise', 'rollback'\]"),
    ("program_on_nonfinite", lambda: _program("Rollback"),
     r"Program\.on_nonfinite='Rollback' is invalid; allowed: one of \['raise', 'rollback'\]"),
]


@pytest.mark.parametrize("call,pattern", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_input_is_a_one_line_value_error(call, pattern):
    with pytest.raises(ValueError) as err:
        call()
    message = str(err.value)
    assert "\n" not in message, message
    assert re.search(pattern, message), message


# ------------------------------------------------------------------------- correct results


def _fit(data: Transition, predict_reward: bool = True) -> tuple[Any, dict, Any]:
    model = _model(predict_reward)
    state0 = model.init(jax.random.PRNGKey(0))
    state, metrics = jax.jit(model.fit)(state0, data, jax.random.PRNGKey(1))
    return state, metrics, state0


def _finite(tree: Any) -> bool:
    return all(np.isfinite(np.asarray(x)).all() for x in jax.tree_util.tree_leaves(tree))


def _with(field: str, row: int, value: float) -> Transition:
    base = _data()
    x = np.array(getattr(base, field))
    x[row] = value
    return base.replace(**{field: jnp.asarray(x)})


NONFINITE_ROWS = [
    # (id, data, model has a reward head, rows masked)
    ("nan_obs", lambda: _with("obs", 3, NAN), True, 1),
    ("inf_action", lambda: _with("action", 10, INF), True, 1),
    ("neg_inf_next_obs", lambda: _with("next_obs", 63, -INF), True, 1),
    ("nan_reward_with_head", lambda: _with("reward", 0, NAN), True, 1),
    ("nan_reward_without_head", lambda: _with("reward", 0, NAN), False, 0),
]


@pytest.mark.parametrize("data,reward_head,masked", [c[1:] for c in NONFINITE_ROWS],
                         ids=[c[0] for c in NONFINITE_ROWS])
def test_nonfinite_rows_are_masked_and_counted(data, reward_head, masked):
    state, metrics, _ = _fit(data(), reward_head)
    assert int(metrics["num_nonfinite_rows"]) == masked
    assert int(metrics["num_train"]) + int(metrics["num_holdout"]) == ROWS - masked
    assert not bool(metrics["nonfinite"]) and _finite(state)


def test_all_rows_nonfinite_leave_the_model_unchanged():
    data = _data()
    state, metrics, state0 = _fit(data.replace(next_obs=data.next_obs * jnp.inf))
    assert bool(metrics["nonfinite"]) and int(metrics["num_nonfinite_rows"]) == ROWS
    leaves, leaves0 = jax.tree_util.tree_leaves(state), jax.tree_util.tree_leaves(state0)
    for a, b in zip(leaves, leaves0, strict=True):
        np.testing.assert_array_equal(a, b)
