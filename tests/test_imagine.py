"""`imagine` and the model protocol: gradients against finite differences (float64), the
termination rule, row identity, and a model written against the protocol alone."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from docs_examples import load_example

from mbjax.models import EnsembleConfig, check_model, make_ensemble
from mbjax.rollout import (
    PropagationConfig,
    imagine,
    make_model_problem,
    make_model_transition,
    propagate,
)


def linear_model(s=3, a=2, dtype=jnp.float32, sigma=0.0):
    lm = load_example("linear_model")
    model = lm.LinearModel(state_size=s, action_size=a)
    key = jax.random.PRNGKey(0)
    w = 0.3 * jax.random.normal(key, (s + a + 1, s), dtype) + jnp.eye(s + a + 1, s, dtype=dtype)
    return model, lm.LinearState(weights=w, sigma=jnp.full((s,), sigma, dtype))


def linear_policy(params, obs, key):
    del key
    return jnp.tanh(obs @ params["k"] + params["b"])


def quadratic_reward(obs, action, next_obs):
    return -jnp.sum(next_obs**2) - 0.1 * jnp.sum(action**2)


def test_linear_model_implements_the_protocol_and_ensembles_do_too():
    model, _ = linear_model()
    check_model(model)
    check_model(make_ensemble(EnsembleConfig(ensemble_size=2, hidden_sizes=(4,)), 3, 1))
    with pytest.raises(ValueError, match="missing: .*fit"):
        check_model(object())


def test_imagine_gradients_match_finite_differences_in_float64():
    with jax.enable_x64(True):
        model, state = linear_model(dtype=jnp.float64)
        params = {"k": 0.2 * jnp.ones((3, 2), jnp.float64), "b": jnp.zeros(2, jnp.float64)}
        starts = jax.random.normal(jax.random.PRNGKey(1), (4, 3), jnp.float64)

        def objective(p, x0):
            im = imagine(model, state, linear_policy, p, x0, 5, jax.random.PRNGKey(2),
                         reward_fn=quadratic_reward, sample_noise=False)
            return jnp.sum(im.rewards * im.weights)

        grads, g_starts = jax.grad(objective, argnums=(0, 1))(params, starts)
        eps = 1e-6
        for i, j in [(0, 0), (1, 1), (2, 0)]:
            d = jnp.zeros((3, 2), jnp.float64).at[i, j].set(eps)
            up = objective({**params, "k": params["k"] + d}, starts)
            down = objective({**params, "k": params["k"] - d}, starts)
            np.testing.assert_allclose(grads["k"][i, j], (up - down) / (2 * eps), rtol=1e-6)
        d = jnp.zeros((4, 3), jnp.float64).at[2, 1].set(eps)
        fd = (objective(params, starts + d) - objective(params, starts - d)) / (2 * eps)
        np.testing.assert_allclose(g_starts[2, 1], fd, rtol=1e-6)


def test_imagine_rows_follow_their_starts_through_the_dynamics():
    model, state = linear_model()
    params = {"k": 0.1 * jnp.ones((3, 2)), "b": jnp.full((2,), 0.05)}
    starts = jax.random.normal(jax.random.PRNGKey(3), (7, 3))
    im = jax.jit(lambda k: imagine(model, state, linear_policy, params, starts, 4, k,
                                   reward_fn=quadratic_reward, sample_noise=False))(
        jax.random.PRNGKey(4))
    assert im.obs.shape == (5, 7, 3) and im.actions.shape == (4, 7, 2)
    x = np.asarray(starts)
    for t in range(4):
        a = np.tanh(x @ np.full((3, 2), 0.1) + 0.05)
        np.testing.assert_allclose(im.actions[t], a, rtol=1e-5, atol=1e-6)
        x = np.concatenate([x, a, np.ones((7, 1))], -1) @ np.asarray(state.weights)
        np.testing.assert_allclose(im.obs[t + 1], x, rtol=1e-5, atol=1e-5)
        r = -(x**2).sum(-1) - 0.1 * (a**2).sum(-1)
        np.testing.assert_allclose(im.rewards[t], r, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(im.weights, 1.0)


def termination_ensemble(p_done):
    """One-layer ensemble whose termination head outputs the constant probability p_done."""
    cfg = EnsembleConfig(ensemble_size=3, num_elites=2, hidden_sizes=(4,), predict_reward=True,
                         predict_termination=True, probabilistic=False)
    model = make_ensemble(cfg, 2, 1)
    st = model.init(jax.random.PRNGKey(0))
    layers = list(st.params["layers"])
    b = jnp.zeros_like(layers[-1]["b"]).at[:, 2].set(1.0)  # reward 1 (normalized = raw here)
    b = b.at[:, -1].set(float(np.log(p_done / (1 - p_done))))
    layers[-1] = {"w": jnp.zeros_like(layers[-1]["w"]), "b": b}
    return model, st.replace(params={**st.params, "layers": layers})


@pytest.mark.parametrize("p_done", [0.3, 0.7])
def test_termination_rule_soft_and_hard(p_done):
    model, st = termination_ensemble(p_done)
    policy = lambda params, obs, key: jnp.zeros(obs.shape[:-1] + (1,))
    starts = jnp.zeros((6, 2))
    soft = imagine(model, st, policy, None, starts, 4, jax.random.PRNGKey(0))
    hard = imagine(model, st, policy, None, starts, 4, jax.random.PRNGKey(0), termination="hard")
    survive = (1 - p_done) ** np.arange(4)
    np.testing.assert_allclose(soft.weights, np.broadcast_to(survive[:, None], (4, 6)), rtol=1e-5)
    np.testing.assert_allclose(soft.dones, p_done, rtol=1e-5)
    expected_hard = 1.0 if p_done < 0.5 else (np.arange(4) == 0).astype(float)
    np.testing.assert_allclose(hard.weights, np.broadcast_to(
        np.reshape(expected_hard, (-1, 1)) * np.ones((4, 6)), (4, 6)))
    np.testing.assert_allclose(hard.rewards, 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="termination='sometimes'"):
        make_model_transition(model, termination="sometimes")


def test_imagine_uses_only_elites_and_balances_members():
    cfg = EnsembleConfig(ensemble_size=4, num_elites=2, hidden_sizes=(4,), probabilistic=False,
                         predict_reward=True)
    model = make_ensemble(cfg, 1, 1)
    st = model.init(jax.random.PRNGKey(0))
    layers = list(st.params["layers"])
    # Member e adds e + 1 to the state: the increment reveals the member used.
    b = jnp.zeros_like(layers[-1]["b"]).at[:, 0].set(jnp.arange(1.0, 5.0))
    layers[-1] = {"w": jnp.zeros_like(layers[-1]["w"]), "b": b}
    st = st.replace(params={**st.params, "layers": layers}, elites=jnp.array([3, 1], jnp.int32))
    policy = lambda params, obs, key: jnp.zeros(obs.shape[:-1] + (1,))
    im = imagine(model, st, policy, None, jnp.zeros((10, 1)), 6, jax.random.PRNGKey(5))
    member = np.rint(np.diff(np.asarray(im.obs[..., 0]), axis=0)).astype(int) - 1  # [H, N]
    assert set(np.unique(member)) == {1, 3}
    np.testing.assert_array_equal((member == 3).sum(axis=1), 5)  # balanced: N / K per member


def test_model_problem_exposes_mean_dynamics_reward_and_objective():
    cfg = EnsembleConfig(ensemble_size=3, hidden_sizes=(16,), probabilistic=True)
    model = make_ensemble(cfg, 3, 2)
    st = model.init(jax.random.PRNGKey(1))
    pcfg = PropagationConfig("tsinf", 6)
    problem = make_model_problem(model, pcfg, quadratic_reward)(
        st, jnp.full((3,), 0.2), jax.random.PRNGKey(2))
    x, a = jnp.array([0.1, -0.3, 0.5]), jnp.array([0.4, -0.2])
    mean_next = model.predict(st, x, a).next_obs_mean.mean(0)
    np.testing.assert_allclose(problem.step(x, a), mean_next, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(problem.reward(x, a, mean_next), quadratic_reward(x, a, mean_next))
    actions = jax.random.uniform(jax.random.PRNGKey(3), (5, 4, 2), minval=-1, maxval=1)
    direct = propagate(model, pcfg, st, jnp.full((3,), 0.2), actions, jax.random.PRNGKey(2),
                       quadratic_reward).values
    np.testing.assert_allclose(problem.objective(actions), direct, rtol=1e-6)
    # Differentiable dynamics: what an iLQR planner linearizes.
    jac = jax.jacfwd(problem.step)(x, a)
    assert jac.shape == (3, 3) and np.all(np.isfinite(jac))


def test_deep_model_check_catches_wrong_outputs():
    lm = load_example("linear_model")
    good = lm.LinearModel(state_size=3, action_size=2)
    check_model(good, deep=True)
    check_model(make_ensemble(EnsembleConfig(ensemble_size=2, hidden_sizes=(4,),
                                             predict_reward=True), 3, 1), deep=True)

    class NoMetrics(lm.LinearModel):
        def fit(self, state, data, key):
            return state, {"loss": jnp.zeros(())}

    class ClaimsReward(lm.LinearModel):
        has_reward: bool = True

    with pytest.raises(ValueError, match=r"fit's metrics lack \['train_loss'"):
        check_model(NoMetrics(3, 2), deep=True)
    with pytest.raises(ValueError, match=r"step.*\.reward has shape None; expected \(1, 2\)"):
        check_model(ClaimsReward(3, 2), deep=True)
