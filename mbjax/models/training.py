"""Training an ensemble: one compiled program for the whole fit (epochs x minibatches).

Data lives in a fixed-capacity buffer with a traced `size`, so a growing buffer never retraces:
the split, shuffles and minibatch counts are computed from `size` at run time and every array
keeps the buffer's static capacity C.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from mbjax import validation
from mbjax.models.config import EnsembleConfig
from mbjax.models.normalizer import fit_normalizer, normalize
from mbjax.models.state import ModelNormalizer, ModelState
from mbjax.replay import ReplayBuffer
from mbjax.types import Transition

_LOG_2PI = math.log(2.0 * math.pi)


class FitData(NamedTuple):
    """The fit's data in normalized units, with its holdout split (capacity C, traced sizes).

    x [C, in], y [C, D], terminated [C]; perm [C]: valid slots first, in random order (holdout
    = the first n_hold); boot [E, C]: each member's (bootstrap) positions in the train list;
    hold_idx/train_idx [min(C, max_holdout)] with weights hold_w/train_w for evaluation.
    A slot is valid when it is filled (< size) and its row is finite; num_nonfinite [] int32
    counts the filled rows masked for NaN/Inf, first_nonfinite [] int32 is the first (-1: none).
    Masked rows hold zeros in x, y and terminated (weights 0 must not meet NaN: NaN * 0 = NaN).
    """

    x: jax.Array
    y: jax.Array
    terminated: jax.Array
    normalizer: ModelNormalizer
    perm: jax.Array
    boot: jax.Array
    n_train: jax.Array
    n_hold: jax.Array
    hold_idx: jax.Array
    hold_w: jax.Array
    train_idx: jax.Array
    train_w: jax.Array
    num_nonfinite: jax.Array
    first_nonfinite: jax.Array


class EpochCarry(NamedTuple):
    """The state of the epoch loop: current and best-on-holdout params per member [E], with the
    holdout losses of the best snapshot (best_holdout: `evaluate`'s dict of [E]; kept rather than
    recomputed after the loop)."""

    params: Any
    opt_state: Any
    best_params: Any
    best_score: jax.Array
    best_holdout: dict[str, jax.Array]
    since_improved: jax.Array
    best_epoch: jax.Array
    history: jax.Array
    epoch: jax.Array
    key: jax.Array
    nonfinite: jax.Array


def _as_data(data: Any, size: Any) -> tuple[Transition, jax.Array]:
    if isinstance(data, ReplayBuffer):
        trans, n = data.data, data.size
    elif isinstance(data, Transition):
        trans = data
        n = data.obs.shape[0] if size is None else size
    else:
        raise ValueError(
            f"fit: data must be a ReplayBuffer of Transition or a Transition, got {type(data)}"
        )
    if not isinstance(trans, Transition):
        raise ValueError(f"fit: buffer data must be a Transition, got {type(trans)}")
    if size is not None and isinstance(data, ReplayBuffer):
        n = size
    cap = trans.obs.shape[0]
    return trans, jnp.clip(jnp.asarray(n, jnp.int32), 0, cap)


def _wmean(x: jax.Array, w: jax.Array) -> jax.Array:
    """Weighted mean over the last axis; x: [E, M], w: [M] or [E, M] -> [E]."""
    w = jnp.broadcast_to(w, x.shape)
    return jnp.sum(x * w, axis=-1) / jnp.maximum(jnp.sum(w, axis=-1), 1.0)


class FitSetup(NamedTuple):
    """What the fit needs from the ensemble (static): its config and optimizer, the raw input
    features `features(obs, action) -> [..., in]`, the network on normalized inputs
    `forward(params, x, shared) -> (mean, logvar | None, logit | None)` over [E, ...], and the
    sizes of observations, actions and regressed targets (obs_size, + 1 with a reward head)."""

    config: EnsembleConfig
    optimizer: optax.GradientTransformation
    features: Callable[[jax.Array, jax.Array], jax.Array]
    forward: Callable[..., tuple]
    obs_size: int
    action_size: int
    target_size: int


def row_losses(
    mean: jax.Array, logvar: jax.Array | None, logit: jax.Array | None, y: jax.Array,
    t: jax.Array, beta: float | None = None,
) -> dict[str, jax.Array]:
    """Per-member, per-row losses [E, M] (mean over target dims): mse, nll (probabilistic, incl.
    0.5 log 2 pi), term_bce (termination head) and, given `beta`, the training NLL `nll_loss`
    with each element scaled by a constant var**beta (beta-NLL). mean/logvar [E, M, D],
    y [E or 1, M, D], t [E or 1, M]."""
    out = {"mse": jnp.mean(jnp.square(mean - y), axis=-1)}
    if logvar is not None:
        nll = 0.5 * (jnp.square(mean - y) * jnp.exp(-logvar) + logvar + _LOG_2PI)
        out["nll"] = jnp.mean(nll, axis=-1)
        if beta is not None:
            if beta > 0.0:
                # beta-NLL: a badly fitted element cannot silence its own mean gradient by
                # raising its variance.
                nll = nll * jax.lax.stop_gradient(jnp.exp(beta * logvar))
            out["nll_loss"] = jnp.mean(nll, axis=-1)
    if logit is not None:
        out["term_bce"] = optax.sigmoid_binary_cross_entropy(logit, t)
    return out


def gaussian_losses(
    mean: jax.Array, logvar: jax.Array | None, logit: jax.Array | None, y: jax.Array,
    t: jax.Array, w: jax.Array, beta: float | None = None,
) -> dict[str, jax.Array]:
    """Per-member weighted means [E] of `row_losses` (same arguments); w [M] or [E, M]."""
    return {k: _wmean(v, w) for k, v in row_losses(mean, logvar, logit, y, t, beta).items()}


def total_loss(setup: FitSetup, params: Any, x, y, t, w) -> tuple[jax.Array, dict]:
    """Summed training loss of all members on per-member batches x [E, M, in], y [E, M, D],
    t [E, M], w [E, M] (members are independent: the sum gives each its own gradient)."""
    cfg = setup.config
    mean, logvar, logit = setup.forward(params, x, shared=False)
    m = gaussian_losses(mean, logvar, logit, y, t, w, beta=float(cfg.nll_beta))
    loss = m["nll_loss"] if cfg.probabilistic else m["mse"]
    if cfg.probabilistic:
        loss = loss + cfg.logvar_penalty * (
            jnp.sum(params["max_logvar"], axis=-1) - jnp.sum(params["min_logvar"], axis=-1)
        )
    if cfg.predict_termination:
        loss = loss + cfg.termination_loss_weight * m["term_bce"]
    for wd, layer in zip(cfg.layer_weight_decays, params["layers"], strict=True):
        if wd > 0.0:
            loss = loss + wd * 0.5 * jnp.sum(jnp.square(layer["w"]), axis=(1, 2))
    return jnp.sum(loss), m


# Rows per forward pass when evaluating. Evaluation sets have a static size (min(C,
# max_holdout)) but a traced number of rows that count, always a prefix: scoring them in chunks and
# running only the chunks that hold such rows makes a 1,000-row holdout in a 10,000-slot buffer
# cost 4 chunks rather than a 5,000-row pass (that padding was over a third of the CPU time of a
# 2-epoch fit of 5 x 4x200 on 5,000 rows).
EVAL_CHUNK = 256


def evaluate(setup: FitSetup, params: Any, d: FitData, idx: jax.Array, w: jax.Array) -> dict:
    """Losses [E] of every member on the same rows `idx` [R] with weights `w` [R] (nonzero on a
    prefix of the rows only: the rows after it are not run). Chunks of EVAL_CHUNK rows,
    accumulated as weighted sums, so the result is `gaussian_losses` up to summation order."""
    chunk = min(EVAL_CHUNK, idx.shape[0])
    pad = -idx.shape[0] % chunk
    idx, w = jnp.pad(idx, (0, pad)), jnp.pad(w, (0, pad))
    n_chunks = (jnp.sum(w > 0, dtype=jnp.int32) + chunk - 1) // chunk

    def chunk_sums(i, sums):
        j, wc = (jax.lax.dynamic_slice_in_dim(a, i * chunk, chunk) for a in (idx, w))
        mean, logvar, logit = setup.forward(params, d.x[j], shared=True)
        rows = row_losses(mean, logvar, logit, d.y[j][None], d.terminated[j][None])
        return {k: sums[k] + jnp.sum(v * wc, axis=-1) for k, v in rows.items()}

    E = setup.config.ensemble_size
    names = ["mse"] + (["nll"] if setup.config.probabilistic else [])
    names += ["term_bce"] if setup.config.predict_termination else []
    sums = jax.lax.fori_loop(0, n_chunks, chunk_sums, {k: jnp.zeros((E,)) for k in names})
    return {k: v / jnp.maximum(jnp.sum(w), 1.0) for k, v in sums.items()}


def make_fit(
    config: EnsembleConfig,
    optimizer: optax.GradientTransformation,
    features: Callable[[jax.Array, jax.Array], jax.Array],
    forward_normalized: Callable[..., tuple],
    obs_size: int,
    action_size: int,
    target_size: int,
) -> Callable[..., tuple[ModelState, dict[str, jax.Array]]]:
    """Returns `fit(state, data, key, size=None) -> (state, metrics)`.

    data: a ReplayBuffer whose data is a Transition with leaves [C, ...] (its traced `size` says
    how many leading slots are filled), or a Transition [C, ...] with an optional traced `size`;
    obs/next_obs [C, obs_size], action [C, action_size], reward/terminated [C] (other shapes: a
    one-line ValueError at trace time). A filled row with a NaN/Inf in obs, action, next_obs,
    the reward (with a reward head) or terminated (with a termination head) is masked out of
    the normalizers, the split and training, as if it were not filled; the valid data are the
    filled finite rows. With every filled row non-finite the state is returned unchanged and
    `nonfinite` is set. The input/target normalizers are refitted on the valid data; a random
    `holdout_ratio` of it (at most `max_holdout`) is held out. Each epoch shuffles every
    member's training set (its bootstrap resample if `bootstrap`) and runs
    ceil(n_train / batch_size) Adam steps on all members at once. After every epoch each member
    keeps its best-on-holdout snapshot (a finite holdout score only); training stops after
    `max_epochs` or when no member improved for `patience` epochs. With no holdout
    (ratio 0, or too little data) the metric is taken on the training data. Elites: the
    `num_elites` members with the lowest holdout metric.

    Probabilistic members are trained on the Gaussian NLL, each element scaled by a constant
    var**nll_beta (beta-NLL; config.nll_beta = 0 is the plain NLL).

    metrics (per member [E] unless noted): train_mse, holdout_mse (normalized units, mean over
    target dims; on the returned snapshot), train_nll / holdout_nll (probabilistic, per dim,
    incl. 0.5 log 2 pi; the plain NLL whatever nll_beta), train_term_bce / holdout_term_bce
    (termination head), best_epoch, holdout_history [max_epochs, E] (NaN for epochs not run),
    epochs, num_train, num_holdout (scalars), num_nonfinite_rows (scalar int: filled rows masked
    for NaN/Inf), first_nonfinite_row (scalar int, -1: none), elites [K], nonfinite (scalar
    bool: a NaN/Inf training loss was seen, or no filled row was finite; a non-finite optimizer
    state is then not kept); train_loss / holdout_loss (scalars: mean MSE of the elites, the
    dynamics-model protocol's summary).
    """
    setup = FitSetup(
        config, optimizer, features, forward_normalized, obs_size, action_size, target_size
    )

    def fit(
        state: ModelState, data: Any, key: jax.Array, size: Any = None
    ) -> tuple[ModelState, dict[str, jax.Array]]:
        return run_fit(setup, state, data, key, size)

    return fit


def finite_rows(*arrays: jax.Array) -> jax.Array:
    """[n] bool: row i is True when every entry of every `arrays[k][i]` is finite.

    arrays: leaves [n, ...] (bool/int leaves are always finite)."""
    ok = jnp.ones(arrays[0].shape[:1], bool)
    for a in arrays:
        if jnp.issubdtype(a.dtype, jnp.inexact):
            ok = ok & jnp.all(jnp.isfinite(a.reshape(a.shape[0], -1)), axis=1)
    return ok


def check_data_shapes(trans: Transition, obs_size: int, action_size: int) -> None:
    """Raises a one-line ValueError naming the field whose shape does not fit the model:
    obs/next_obs [C, obs_size], action [C, action_size], reward/terminated [C] (trace time)."""
    cap = trans.obs.shape[0] if trans.obs.ndim else None
    expected = {
        "obs": (cap, obs_size), "action": (cap, action_size), "next_obs": (cap, obs_size),
        "reward": (cap,), "terminated": (cap,),
    }
    for field, shape in expected.items():
        got = tuple(jnp.shape(getattr(trans, field)))
        if got != shape:
            raise validation.invalid(
                f"fit: data.{field}.shape", got,
                f"{shape} (C = {cap} rows; the model has obs_size={obs_size}, "
                f"action_size={action_size})",
            )


def _fit_rows(setup: FitSetup, trans: Transition, n_filled: jax.Array):
    """Raw inputs x [C, in], targets y [C, D], terminated [C] and the valid mask [C] (filled and
    finite), with masked rows zeroed; plus the number of filled rows masked for NaN/Inf."""
    cap = trans.obs.shape[0]
    filled = jnp.arange(cap) < n_filled
    # The fields the model learns from; a NaN reward only matters with a reward head.
    used = [trans.obs, trans.action, trans.next_obs]
    if setup.target_size > setup.obs_size:
        used.append(trans.reward)
    if setup.config.predict_termination:
        used.append(trans.terminated)
    finite = finite_rows(*used)
    valid = filled & finite
    zero = lambda a: jnp.where(finite.reshape((cap,) + (1,) * (a.ndim - 1)), a, 0)
    obs, nxt = zero(trans.obs), zero(trans.next_obs)
    x_raw = setup.features(obs, zero(trans.action))
    y_raw = nxt - obs
    if setup.target_size > setup.obs_size:
        y_raw = jnp.concatenate([y_raw, zero(trans.reward).reshape(cap, 1)], axis=-1)
    terminated = zero(trans.terminated.reshape(cap).astype(jnp.float32))
    bad = filled & ~finite
    first_bad = jnp.where(jnp.any(bad), jnp.argmax(bad), -1).astype(jnp.int32)
    return x_raw, y_raw, terminated, valid, jnp.sum(bad, dtype=jnp.int32), first_bad


def split_data(
    setup: FitSetup, data: Any, size: Any, k_split: jax.Array, k_boot: jax.Array
) -> FitData:
    """Normalizers refitted on the valid (filled, finite) rows; a random holdout split of them
    (traced sizes, no retrace: rows are masked, never removed)."""
    config = setup.config
    E = config.ensemble_size
    trans, n_filled = _as_data(data, size)
    check_data_shapes(trans, setup.obs_size, setup.action_size)
    cap = trans.obs.shape[0]
    x_raw, y_raw, terminated, valid, n_bad, first_bad = _fit_rows(setup, trans, n_filled)
    n_valid = jnp.sum(valid, dtype=jnp.int32)
    normalizer = ModelNormalizer(
        inputs=fit_normalizer(x_raw, valid), targets=fit_normalizer(y_raw, valid)
    )
    # Random order of the valid slots first (invalid slots sort last).
    perm = jnp.argsort(jnp.where(valid, jax.random.uniform(k_split, (cap,)), 2.0))
    n_hold = jnp.minimum(
        jnp.floor(n_valid * config.holdout_ratio).astype(jnp.int32), config.max_holdout
    )
    n_train = n_valid - n_hold
    # Evaluation sets have a static size; masks select the traced number of items.
    ecap = min(cap, config.max_holdout)
    epos = jnp.arange(ecap)
    if config.bootstrap:
        boot = jax.random.randint(k_boot, (E, cap), 0, jnp.maximum(n_train, 1))
    else:
        boot = jnp.broadcast_to(jnp.arange(cap), (E, cap))
    return FitData(
        x=normalize(normalizer.inputs, x_raw),
        y=normalize(normalizer.targets, y_raw),
        terminated=terminated,
        normalizer=normalizer,
        perm=perm,
        boot=boot,
        n_train=n_train,
        n_hold=n_hold,
        hold_idx=perm[epos],
        hold_w=jnp.where(n_hold > 0, epos < n_hold, epos < n_valid).astype(jnp.float32),
        train_idx=perm[jnp.clip(n_hold + epos, 0, cap - 1)],
        train_w=(epos < n_train).astype(jnp.float32),
        num_nonfinite=n_bad,
        first_nonfinite=first_bad,
    )


def epoch_slots(setup: FitSetup, d: FitData, key: jax.Array) -> jax.Array:
    """[E, ceil(C / batch_size) * batch_size] buffer slots of one epoch: member e's (shuffled,
    bootstrapped) training rows at positions < n_train, any valid slot after (weight 0). One
    vectorized pass per epoch, so a minibatch is a slice of it."""
    E, bs = setup.config.ensemble_size, setup.config.batch_size
    cap = d.x.shape[0]
    u = jax.random.uniform(key, (E, cap))
    order = jnp.argsort(jnp.where(jnp.arange(cap) < d.n_train, u, 2.0), axis=1)
    j = jnp.take_along_axis(d.boot, order, axis=1)  # [E, C] positions in the train list
    slots = d.perm[jnp.clip(d.n_hold + j, 0, cap - 1)]
    # Padded to whole minibatches: the last slice must not be clamped back over real rows.
    return jnp.pad(slots, ((0, 0), (0, -cap % bs)), mode="edge")


def train_epoch(setup: FitSetup, params, opt_state, d: FitData, key: jax.Array, bad: jax.Array):
    """One pass of minibatches over every member's (shuffled, bootstrapped) training set."""
    E, bs = setup.config.ensemble_size, setup.config.batch_size
    slots = epoch_slots(setup, d, key)

    def batch_body(b, c):
        params, opt_state, bad = c
        pos = b * bs + jnp.arange(bs)
        w = jnp.broadcast_to((pos < d.n_train).astype(jnp.float32), (E, bs))
        idx = jax.lax.dynamic_slice_in_dim(slots, b * bs, bs, axis=1)  # [E, bs] buffer slots
        (loss, _), grads = jax.value_and_grad(total_loss, argnums=1, has_aux=True)(
            setup, params, d.x[idx], d.y[idx], d.terminated[idx], w
        )
        updates, opt_state = setup.optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        return params, opt_state, bad | ~jnp.isfinite(loss)

    n_batches = (d.n_train + bs - 1) // bs
    return jax.lax.fori_loop(0, n_batches, batch_body, (params, opt_state, bad))


def epoch_body(setup: FitSetup, d: FitData, c: EpochCarry) -> EpochCarry:
    E, thr = setup.config.ensemble_size, setup.config.improvement_threshold
    key, k_shuffle = jax.random.split(c.key)
    params, opt_state, bad = train_epoch(setup, c.params, c.opt_state, d, k_shuffle, c.nonfinite)
    holdout = evaluate(setup, params, d, d.hold_idx, d.hold_w)
    score = holdout[setup.config.holdout_metric]
    improved = (score < c.best_score - thr * jnp.abs(c.best_score)) & jnp.isfinite(score)
    best, best_holdout = jax.tree_util.tree_map(
        lambda new, old: jnp.where(improved.reshape((E,) + (1,) * (new.ndim - 1)), new, old),
        (params, holdout),
        (c.best_params, c.best_holdout),
    )
    return EpochCarry(
        params=params,
        opt_state=opt_state,
        best_params=best,
        best_score=jnp.where(improved, score, c.best_score),
        best_holdout=best_holdout,
        since_improved=jnp.where(improved, 0, c.since_improved + 1),
        best_epoch=jnp.where(improved, c.epoch + 1, c.best_epoch),
        history=c.history.at[c.epoch].set(score),
        epoch=c.epoch + 1,
        key=key,
        nonfinite=bad,
    )

def epoch_cond(setup: FitSetup, c: EpochCarry) -> jax.Array:
    go = c.epoch < setup.config.max_epochs
    if setup.config.patience is not None:
        go = go & (jnp.min(c.since_improved) < setup.config.patience)
    return go

def run_fit(
    setup: FitSetup, state: ModelState, data: Any, key: jax.Array, size: Any = None
) -> tuple[ModelState, dict[str, jax.Array]]:
    """The fit of `make_fit` (see its docstring)."""
    config = setup.config
    E = config.ensemble_size
    k_split, k_boot, k_epochs = jax.random.split(key, 3)
    d = split_data(setup, data, size, k_split, k_boot)
    # Epoch 0 = the incoming params under the new normalizer: a refit never ends worse on
    # holdout than the model it started from.
    holdout0 = evaluate(setup, state.params, d, d.hold_idx, d.hold_w)
    score0 = holdout0[config.holdout_metric]
    carry = EpochCarry(
        params=state.params,
        opt_state=state.opt_state,
        best_params=state.params,
        best_score=jnp.where(jnp.isfinite(score0), score0, jnp.inf),
        best_holdout=holdout0,
        since_improved=jnp.zeros((E,), jnp.int32),
        best_epoch=jnp.zeros((E,), jnp.int32),
        history=jnp.full((config.max_epochs, E), jnp.nan, jnp.float32),
        epoch=jnp.zeros((), jnp.int32),
        key=k_epochs,
        nonfinite=jnp.zeros((), bool),
    )
    c = jax.lax.while_loop(
        functools.partial(epoch_cond, setup), functools.partial(epoch_body, setup, d), carry
    )

    return finish_fit(setup, state, d, c)


def all_finite(tree: Any) -> jax.Array:
    """[] bool: every leaf of `tree` is finite."""
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(tree)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.ones((), bool)


def finish_fit(setup: FitSetup, state: ModelState, d: FitData,
               c: EpochCarry) -> tuple[ModelState, dict[str, jax.Array]]:
    """The fitted state (best snapshots, elites) and the fit's metrics (see `make_fit`).

    With every filled row non-finite there is nothing to fit: the incoming state is returned
    unchanged (not an identity normalizer over it) and `nonfinite` is set.
    """
    config = setup.config
    elites = jnp.argsort(c.best_score)[: config.elites_count].astype(jnp.int32)
    hold_m = c.best_holdout
    train_m = evaluate(setup, c.best_params, d, d.train_idx, d.train_w)
    no_data = (d.num_nonfinite > 0) & (d.n_train + d.n_hold == 0)
    opt_ok = all_finite(c.opt_state)
    metrics: dict[str, jax.Array] = {f"train_{k}": v for k, v in train_m.items()}
    metrics.update({f"holdout_{k}": v for k, v in hold_m.items()})
    metrics.update(
        # The protocol's scalars: what learners log (MSE of the elites, normalized units).
        train_loss=jnp.mean(train_m["mse"][elites]),
        holdout_loss=jnp.mean(hold_m["mse"][elites]),
        best_epoch=c.best_epoch,
        holdout_history=c.history,
        epochs=c.epoch,
        num_train=d.n_train,
        num_holdout=d.n_hold,
        num_nonfinite_rows=d.num_nonfinite,
        first_nonfinite_row=d.first_nonfinite,
        elites=elites,
        nonfinite=c.nonfinite | no_data,
    )
    new_state = state.replace(
        params=c.best_params,
        normalizer=d.normalizer,
        # A NaN/Inf step leaves NaN Adam moments, which would poison every later (warm) fit:
        # keep the incoming optimizer state then (its learning rate leaf included).
        opt_state=jax.tree_util.tree_map(
            lambda new, old: jnp.where(opt_ok, new, old), c.opt_state, state.opt_state
        ),
        elites=elites,
        holdout_score=c.best_score,
    )
    new_state = jax.tree_util.tree_map(
        lambda new, old: jnp.where(no_data, old, new), new_state, state
    )
    return new_state, metrics


def raise_if_nonfinite(metrics: dict[str, jax.Array]) -> None:
    """Host-side guard after a fit: raises FloatingPointError if the fit's `nonfinite` is set
    (a NaN/Inf training loss, or every row of the data non-finite).

    Inside the compiled fit rows with NaN/Inf are masked (counted in `num_nonfinite_rows`), a
    non-finite epoch never replaces a member's best snapshot and a non-finite optimizer state is
    not kept, so the returned state stays finite; this makes the event loud instead of silent.
    """
    if bool(metrics["nonfinite"]):
        rows = int(metrics.get("num_nonfinite_rows", 0))
        raise FloatingPointError(
            f"ensemble fit: a training loss was NaN/Inf or no row was finite ({rows} row(s) "
            "with NaN/Inf were masked; check the data and the learning rate); each member "
            "kept its best finite snapshot"
        )
