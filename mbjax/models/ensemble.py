"""Ensemble dynamics model: E MLPs stacked on a leading axis, one batched call for all members.

The network maps normalized [features(obs) ++ action] to normalized targets
[delta_obs (++ reward)] (mean and, if probabilistic, a soft-bounded log-variance) and optionally a
termination logit. Next states are `obs + denormalize(delta)`.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from mbjax import optim, validation
from mbjax.models import mlp
from mbjax.models.base import check_model_matches
from mbjax.models.config import EnsembleConfig
from mbjax.models.normalizer import denormalize, init_normalizer, normalize
from mbjax.models.state import ModelNormalizer, ModelState, ModelStep, Prediction, RawPrediction
from mbjax.models.training import make_fit


class Ensemble(NamedTuple):
    """Function bundle returned by `make_ensemble` (pure functions; jit them where you call them).

    init(key) -> ModelState
    apply(params, normalizer, obs[..., o], action[..., a]) -> Prediction over [E, ...]
        (every member sees the same inputs)
    apply_members(params, normalizer, obs[E, ..., o], action[E, ..., a]) -> Prediction [E, ...]
        (member e sees slice e; the layout used by propagation)
    predict(state, obs[..., o], action[..., a]) -> RawPrediction over [E, ...] (raw units)
    step_members(params, normalizer, obs[E, ..., o], action[E, ..., a], key | None) -> ModelStep
        [E, ...]: a Gaussian sample per member and row (key None or deterministic model: mean)
    sample_next(state, obs[..., o], action[..., a], key, member_idx[...] | None) -> ModelStep
        [...]: each row through member `member_idx` (None: a uniformly drawn elite per row)
    fit(state, data, key, size=None) -> (state, metrics); data: ReplayBuffer of Transition or a
        Transition with leading [n] (+ optional traced `size`); see training.make_fit.

    The dynamics-model protocol (`mbjax.models.base`): state_size (= obs_size), num_members
    (= E), num_elites (= K), has_reward, has_termination, step(state, x [M, R, o],
    action [M, R, a], key | None, members [M] | None) -> ModelStep [M, R], elites(state) -> [K].
    Optional, for propagation: noise_size D (0: deterministic); `step` then also takes, in
    place of a key, pre-drawn standard normals noise [M, R, D] (`jax.random.normal(key, (M, R,
    D))` is exactly what the key would draw).
    The Adam learning rate is a leaf of the optimizer state (`optax.inject_hyperparams`):
    `set_learning_rate(state, lr)` changes it without recompiling `fit`.
    """

    config: EnsembleConfig
    obs_size: int
    action_size: int
    input_size: int
    target_size: int
    state_size: int
    num_members: int
    num_elites: int
    has_reward: bool
    has_termination: bool
    noise_size: int
    init: Callable[[jax.Array], ModelState]
    apply: Callable[..., Prediction]
    apply_members: Callable[..., Prediction]
    predict: Callable[..., RawPrediction]
    step_members: Callable[..., ModelStep]
    sample_next: Callable[..., ModelStep]
    fit: Callable[..., tuple[ModelState, dict[str, jax.Array]]]
    step: Callable[..., ModelStep]
    elites: Callable[[ModelState], jax.Array]


def set_learning_rate(state: ModelState, learning_rate: Any) -> ModelState:
    """The same model state with Adam's learning rate replaced (a float32 leaf: a vmapped grid
    over learning rates shares one compiled `fit`)."""
    return state.replace(
        opt_state=optim.set_hyperparams(state.opt_state, learning_rate=learning_rate)
    )


def _bounded_logvar(raw: jax.Array, max_lv: jax.Array, min_lv: jax.Array) -> jax.Array:
    """PETS soft bounds: smooth clamp of `raw` into (min_lv, max_lv) with softplus."""
    lv = max_lv - jax.nn.softplus(max_lv - raw)
    return min_lv + jax.nn.softplus(lv - min_lv)


def _bounded_std(raw: jax.Array, max_lv: jax.Array, min_lv: jax.Array) -> jax.Array:
    """exp(0.5 * _bounded_logvar(raw, max_lv, min_lv)) with one transcendental per element.

    exp(softplus(z)) = 1 + e^z turns the two softplus bounds into
        std = exp(min_lv / 2) * sqrt(1 + exp(max_lv - min_lv) / (1 + exp(max_lv - raw)))
    (equal up to float rounding, ~1e-6 relative). Why: the sampling step needs only the std,
    and the softplus form (two exp + two log1p + exp on [..., D], D small) was the most
    expensive elementwise kernel of a planning step (~9% of a PETS half-cheetah plan, ~20% of
    a tiny one), log1p being a scalar call on CPU. exp(max_lv - raw) overflowing to inf gives
    the right limit, exp(min_lv / 2); the per-member constants overflow only for
    max_lv - min_lv > 88, far outside what the logvar penalty lets training reach.
    """
    spread = jnp.exp(max_lv - min_lv)
    return jnp.exp(0.5 * min_lv) * jnp.sqrt(1.0 + spread / (1.0 + jnp.exp(max_lv - raw)))


def select_members(params: Any, idx: jax.Array) -> Any:
    """Params restricted to members `idx: [K]` (leading axis E -> K), e.g. the elites."""
    return jax.tree_util.tree_map(lambda p: p[idx], params)


class Network(NamedTuple):
    """The static shape of an ensemble's network (what every function below needs).

    Inputs: features(obs) ++ action, F + A wide (`input_transform` maps obs [obs_size] -> [F];
    None: F = obs_size). Outputs per member: the normalized target mean [D] (D = obs_size, + 1
    with a reward head), a soft-bounded log-variance [D] when probabilistic, a termination
    logit when asked.
    """

    config: EnsembleConfig
    obs_size: int
    action_size: int
    feature_size: int
    input_transform: Callable[[jax.Array], jax.Array] | None
    activation: Callable[[jax.Array], jax.Array]

    @property
    def target_size(self) -> int:
        return self.obs_size + (1 if self.config.predict_reward else 0)

    @property
    def input_size(self) -> int:
        return self.feature_size + self.action_size

    @property
    def layer_sizes(self) -> list[int]:
        cfg, d = self.config, self.target_size
        out = d * (2 if cfg.probabilistic else 1) + (1 if cfg.predict_termination else 0)
        return [self.input_size, *cfg.hidden_sizes, out]


def features(net: Network, obs: jax.Array, action: jax.Array) -> jax.Array:
    """[..., o], [..., a] -> [..., in] raw network inputs."""
    if net.input_transform is None:
        f = obs
    else:
        flat = obs.reshape(-1, net.obs_size)
        f = jax.vmap(net.input_transform)(flat).reshape(obs.shape[:-1] + (net.feature_size,))
    action = jnp.broadcast_to(action, f.shape[:-1] + (net.action_size,))
    return jnp.concatenate([f, action.astype(f.dtype)], axis=-1)


def forward_normalized(net: Network, params: Any, x_norm: jax.Array, shared: bool):
    """Normalized inputs -> (mean [E,...,D], logvar [E,...,D] | None, logit [E,...] | None)."""
    d = net.target_size
    out = mlp.apply_stacked_mlp(params["layers"], x_norm, net.activation, shared)
    logvar = None
    if net.config.probabilistic:
        # out.shape[0] rather than E: params may be a member subset (elites).
        bshape = (out.shape[0],) + (1,) * (out.ndim - 2) + (d,)
        logvar = _bounded_logvar(
            out[..., d : 2 * d],
            params["max_logvar"].reshape(bshape),
            params["min_logvar"].reshape(bshape),
        )
    logit = out[..., -1] if net.config.predict_termination else None
    return out[..., :d], logvar, logit


def forward(net: Network, params: Any, normalizer: ModelNormalizer, obs, action, shared: bool):
    """Raw obs/action -> the normalized outputs of `forward_normalized`."""
    x = normalize(normalizer.inputs, features(net, obs, action))
    return forward_normalized(net, params, x, shared)


def forward_std(net: Network, params: Any, normalizer: ModelNormalizer, obs, action,
                shared: bool):
    """What a sampling step needs: (mean [E,...,D], std [E,...,D] | None, logit [E,...] | None),
    normalized; std = exp(logvar / 2) of `forward_normalized`'s logvar (`_bounded_std`)."""
    d = net.target_size
    x = normalize(normalizer.inputs, features(net, obs, action))
    out = mlp.apply_stacked_mlp(params["layers"], x, net.activation, shared)
    std = None
    if net.config.probabilistic:
        bshape = (out.shape[0],) + (1,) * (out.ndim - 2) + (d,)  # params may be a subset
        std = _bounded_std(out[..., d : 2 * d], params["max_logvar"].reshape(bshape),
                           params["min_logvar"].reshape(bshape))
    logit = out[..., -1] if net.config.predict_termination else None
    return out[..., :d], std, logit


def to_prediction(net: Network, mean, logvar, logit) -> Prediction:
    """Split normalized outputs into next-state delta and reward parts."""
    o = net.obs_size
    rew = rew_lv = None
    if net.config.predict_reward:
        rew = mean[..., o]
        rew_lv = None if logvar is None else logvar[..., o]
    return Prediction(
        mean=mean[..., :o], logvar=None if logvar is None else logvar[..., :o], reward=rew,
        reward_logvar=rew_lv, termination_logit=logit,
    )


def finish_step(net: Network, obs, mean, std, logit, normalizer: ModelNormalizer,
                key: jax.Array | None) -> ModelStep:
    """A Gaussian sample (key given, probabilistic) or the mean, in raw units.

    key: a PRNG key, None (the mean), or pre-drawn standard normals of mean's shape [..., D]
    (float; `Ensemble.noise_size`; `jax.random.normal(key, mean.shape)` is what a key draws,
    so the two give the same sample): propagation draws a whole horizon's noise in one call,
    outside its loops, instead of one small draw per step."""
    if key is not None and std is not None:
        is_noise = jnp.issubdtype(key.dtype, jnp.floating)
        eps = key if is_noise else jax.random.normal(key, mean.shape, mean.dtype)
        mean = mean + std * eps
    raw = denormalize(normalizer.targets, mean)
    return ModelStep(
        next_obs=obs + raw[..., : net.obs_size],
        reward=raw[..., net.obs_size] if net.config.predict_reward else None,
        termination_prob=None if logit is None else jax.nn.sigmoid(logit),
    )


def init_state(net: Network, optimizer: optax.GradientTransformation, key: jax.Array):
    """Fresh params (PETS init), identity normalizers, optimizer state, elites 0..K-1."""
    cfg, e, d = net.config, net.config.ensemble_size, net.target_size
    params: dict[str, Any] = {"layers": mlp.init_stacked_mlp(key, e, net.layer_sizes)}
    if cfg.probabilistic:
        params["max_logvar"] = jnp.full((e, d), cfg.max_logvar_init, jnp.float32)
        params["min_logvar"] = jnp.full((e, d), cfg.min_logvar_init, jnp.float32)
    return ModelState(
        params=params,
        normalizer=ModelNormalizer(inputs=init_normalizer(net.input_size),
                                   targets=init_normalizer(d)),
        opt_state=optimizer.init(params),
        elites=jnp.arange(cfg.elites_count, dtype=jnp.int32),
        holdout_score=jnp.full((e,), jnp.inf, jnp.float32),
    )


def predict(net: Network, state: ModelState, obs: jax.Array, action: jax.Array) -> RawPrediction:
    """Every member on the same rows, in raw units (means and variances)."""
    mean, logvar, logit = forward(net, state.params, state.normalizer, obs, action, shared=True)
    o, tn = net.obs_size, state.normalizer.targets
    raw_mean = denormalize(tn, mean)
    raw_var = None if logvar is None else jnp.exp(logvar) * jnp.square(tn.std)
    reward = net.config.predict_reward
    return RawPrediction(
        next_obs_mean=obs + raw_mean[..., :o],
        next_obs_var=None if raw_var is None else raw_var[..., :o],
        reward_mean=raw_mean[..., o] if reward else None,
        reward_var=raw_var[..., o] if reward and raw_var is not None else None,
        termination_prob=None if logit is None else jax.nn.sigmoid(logit),
    )


def step_members(net: Network, params, normalizer: ModelNormalizer, obs: jax.Array,
                 action: jax.Array, key: jax.Array | None = None) -> ModelStep:
    """Member e on slice e: obs [E, ..., o], action [E, ..., a] -> ModelStep [E, ...]."""
    mean, std, logit = forward_std(net, params, normalizer, obs, action, shared=False)
    return finish_step(net, obs, mean, std, logit, normalizer, key)


def sample_next(net: Network, state: ModelState, obs: jax.Array, action: jax.Array,
                key: jax.Array, member_idx: jax.Array | None = None) -> ModelStep:
    """Each row through member `member_idx` (None: a uniformly drawn elite per row)."""
    # Evaluates every member on every row and keeps one per row: simple and E x the work of
    # one member. Propagation groups rows by member instead (mbjax.rollout).
    k_member, k_noise = jax.random.split(key)
    lead = obs.shape[:-1]
    if member_idx is None:
        pick = jax.random.randint(k_member, lead, 0, state.elites.shape[0])
        member_idx = state.elites[pick]
    member_idx = jnp.broadcast_to(member_idx, lead)
    mean, std, logit = forward_std(net, state.params, state.normalizer, obs, action, shared=True)

    def take(x):
        if x is None:
            return None
        idx = member_idx[None, ..., None] if x.ndim == len(lead) + 2 else member_idx[None]
        return jnp.take_along_axis(x, idx, axis=0)[0]

    return finish_step(net, obs, take(mean), take(std), take(logit), state.normalizer,
                       k_noise)


def protocol_step(net: Network, state: ModelState, x: jax.Array, action: jax.Array,
                  key: jax.Array | None = None, members: jax.Array | None = None) -> ModelStep:
    """The protocol's step: x [M', R, o], action [M', R, a] -> ModelStep [M', R]; slice m goes
    through member members[m] (None: all E members, M' = E)."""
    params = state.params if members is None else select_members(state.params, members)
    return step_members(net, params, state.normalizer, x, action, key)


def learner_model(model: Any, config: Any, obs_size: int, action_size: int, where: str) -> Any:
    """The model a learner uses: `model` (a user's protocol model, checked deeply against the
    env's sizes and the heads `config.learned_reward/learned_termination` ask for) or, when None,
    the ensemble described by `config.model`."""
    custom = model is not None
    if not custom:
        model = make_ensemble(config.model, obs_size, action_size)
    check_model_matches(
        model, obs_size, action_size, where, needs_reward=config.learned_reward,
        needs_termination=config.learned_termination, deep=custom,
    )
    return model


def _feature_size(obs_size: int, input_transform: Callable | None) -> int:
    if input_transform is None:
        return obs_size
    spec = jax.eval_shape(input_transform, jax.ShapeDtypeStruct((obs_size,), jnp.float32))
    if len(spec.shape) != 1:
        raise ValueError(
            f"input_transform must map [obs_size] to [F]; got output shape {spec.shape}"
        )
    return int(spec.shape[0])


def make_ensemble(
    config: EnsembleConfig,
    obs_size: int,
    action_size: int,
    input_transform: Callable[[jax.Array], jax.Array] | None = None,
) -> Ensemble:
    """Builds the ensemble's functions for observations [obs_size] and actions [action_size].

    input_transform: optional map obs[obs_size] -> features[F] applied before the network (e.g.
    angles -> sin/cos, as PETS does for cartpole); targets stay raw state deltas.
    """
    validation.check_int("make_ensemble: obs_size", obs_size)
    validation.check_int("make_ensemble: action_size", action_size)
    if not isinstance(config, EnsembleConfig):
        raise ValueError(f"make_ensemble: config must be an EnsembleConfig, got {type(config)}")
    net = Network(config, obs_size, action_size, _feature_size(obs_size, input_transform),
                  input_transform, mlp.get_activation(config.activation))
    # The learning rate is a leaf of the optimizer state, not a closed-over constant.
    optimizer = optax.inject_hyperparams(optax.adam)(learning_rate=config.learning_rate)
    bind = functools.partial

    def apply(params, normalizer: ModelNormalizer, obs, action) -> Prediction:
        return to_prediction(net, *forward(net, params, normalizer, obs, action, shared=True))

    def apply_members(params, normalizer: ModelNormalizer, obs, action) -> Prediction:
        return to_prediction(net, *forward(net, params, normalizer, obs, action, shared=False))

    return Ensemble(
        config=config,
        obs_size=obs_size,
        action_size=action_size,
        input_size=net.input_size,
        target_size=net.target_size,
        state_size=obs_size,
        num_members=config.ensemble_size,
        num_elites=config.elites_count,
        has_reward=config.predict_reward,
        has_termination=config.predict_termination,
        noise_size=net.target_size if config.probabilistic else 0,
        init=bind(init_state, net, optimizer),
        apply=apply,
        apply_members=apply_members,
        predict=bind(predict, net),
        step_members=bind(step_members, net),
        sample_next=bind(sample_next, net),
        fit=make_fit(config, optimizer, bind(features, net), bind(forward_normalized, net),
                     obs_size, action_size, net.target_size),
        step=bind(protocol_step, net),
        elites=lambda state: state.elites,
    )
