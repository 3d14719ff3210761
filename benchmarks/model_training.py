"""Ensemble model throughput: training samples/s and propagation model-steps/s (PETS sizes), with
an optional side-by-side fit in mbrl-lib.

    python -m benchmarks.model_training --out=benchmarks/results/model_training.json \
        [--compare-mbrl-lib]

Training: one `fit` call (a fixed number of epochs, no early stopping) on a buffer of random
transitions; samples/s counts transitions seen per second (each goes through all E members).
Propagation: one objective call over N candidates x P particles x H steps; model-steps/s counts
(one member, one particle, one step) per second. FLOP/s use 2 FLOPs per multiply-add of the MLP
(training: x3 for forward + backward; the holdout passes, which both libraries run, are not
counted) and are reported next to this machine's float32 matmul peak (a 2048^3 matmul, measured
at the start and the end of the run; the larger is used). Compile time is reported apart from
the steady-state time.

`--compare-mbrl-lib` fits the same ensemble in mbrl-lib (benchmarks/mbrl_lib_model_training.py,
run inside .mbrl_venv/ in a subprocess: `bash benchmarks/setup_mbrl_lib.sh`): E = 5 members of
4 x 200 SiLU, obs 18, action 6, 5,000 stored rows of which 20% (1,000) are held out, 4,000
training rows, minibatches of 256, 2 epochs, each member its own permutation of the training rows
every epoch (mbjax bootstrap=False = mbrl-lib bootstrap_permutes=True), Adam 1e-3, the holdout
evaluated before the first epoch and after every epoch, best-on-holdout snapshots, input
normalizer refitted per fit. Both sides count samples as epochs x 4,000 training rows per fit.
What only mbjax does per fit: masking non-finite rows and a train-set evaluation of the returned
snapshot (train_* metrics); what only mbrl-lib does: nothing of the fit's arithmetic. The two are
timed in alternating rounds in the same run (mbjax calls, then one mbrl-lib subprocess with a
warm-up fit and `--mbrl_fits` timed fits), so both see the same machine load; torch uses its
default thread count (all cores; recorded in the JSON).
"""

from __future__ import annotations

import math
import os
import statistics
import sys
import time

import jax
import jax.numpy as jnp
from absl import app, flags

from benchmarks.common import (
    block,
    compile_and_time,
    device_info,
    matmul_peak_flops,
    normalise_argv,
    run_json_script,
    steady_times,
    write_json,
)
from mbjax import replay
from mbjax.models import EnsembleConfig, make_ensemble
from mbjax.models.mlp import mlp_flops_per_row
from mbjax.rollout import PropagationConfig, make_model_objective
from mbjax.types import Transition

FLAGS = flags.FLAGS
flags.DEFINE_string("out", "benchmarks/results/model_training.json", "JSON output path.")
flags.DEFINE_list("ensembles", ["5", "7"], "Ensemble sizes E.")
flags.DEFINE_list("hidden", ["200", "200", "200", "200"], "Hidden layer widths.")
flags.DEFINE_integer("obs_size", 18, "Observation size (half-cheetah-like).")
flags.DEFINE_integer("action_size", 6, "Action size.")
flags.DEFINE_integer("train_samples", 5000, "Valid transitions in the buffer.")
flags.DEFINE_integer("capacity", 10000, "Buffer capacity.")
flags.DEFINE_integer("batch_size", 256, "Training minibatch size.")
flags.DEFINE_integer("epochs", 2, "Epochs per timed fit call.")
flags.DEFINE_integer("candidates", 500, "Candidates N per objective call.")
flags.DEFINE_integer("particles", 20, "Particles P (rounded up to a multiple of E).")
flags.DEFINE_integer("horizon", 30, "Planning horizon H.")
flags.DEFINE_list("modes", ["tsinf", "ts1"], "Propagation modes.")
flags.DEFINE_integer("repeats", 3, "Minimum steady-state calls per measurement.")
flags.DEFINE_bool("propagation", True, "Also time propagation (objective calls).")
flags.DEFINE_bool("compare_mbrl_lib", False,
                  "Also fit the same ensemble in mbrl-lib (needs .mbrl_venv), alternating.")
flags.DEFINE_integer("compare_ensemble", 5, "Ensemble size E of the mbrl-lib comparison.")
flags.DEFINE_integer("rounds", 5, "Alternating mbjax / mbrl-lib rounds of the comparison.")
flags.DEFINE_integer("mbrl_fits", 3, "Timed mbrl-lib fits per round (after a warm-up fit).")
flags.DEFINE_string("mbrl_python", ".mbrl_venv/bin/python", "Python of mbrl-lib's virtualenv.")
# `--compare-mbrl-lib` (with dashes, as documented) is accepted too: see normalise_argv.

# Per-layer L2 of PETS's 4-hidden-layer models (Chua et al. 2018's half-cheetah).
_PETS_WEIGHT_DECAYS = (2.5e-5, 5e-5, 7.5e-5, 7.5e-5, 1e-4)


def _reward(obs, action, next_obs):
    return next_obs[0] - 0.1 * jnp.sum(jnp.square(action))


def _buffer(key, n, capacity, obs_size, action_size):
    k1, k2, k3 = jax.random.split(key, 3)
    obs = jax.random.normal(k1, (n, obs_size))
    act = jax.random.uniform(k2, (n, action_size), minval=-1.0, maxval=1.0)
    nxt = (
        obs
        + 0.1 * jnp.tanh(obs + jnp.sum(act, -1, keepdims=True))
        + 0.01 * jax.random.normal(k3, obs.shape)
    )
    data = Transition(
        obs=obs, action=act, reward=jnp.zeros(n), next_obs=nxt, terminated=jnp.zeros(n),
        truncated=jnp.zeros(n)
    )
    buf = replay.init(capacity, jax.tree_util.tree_map(lambda x: x[0], data))
    return replay.add(buf, data)


def _config(ens: int, hidden: tuple[int, ...]) -> EnsembleConfig:
    return EnsembleConfig(
        ensemble_size=ens,
        hidden_sizes=hidden,
        batch_size=FLAGS.batch_size,
        max_epochs=FLAGS.epochs,
        patience=None,
        weight_decays=_PETS_WEIGHT_DECAYS if len(hidden) == 4 else 0.0,
    )


def _n_train(cfg: EnsembleConfig) -> int:
    return FLAGS.train_samples - math.floor(FLAGS.train_samples * cfg.holdout_ratio)


def train_row(ens: int, hidden: tuple[int, ...], buf, peak: float) -> dict:
    """One fit of an E-member ensemble, timed in steady state: samples/s and FLOP/s."""
    cfg = _config(ens, hidden)
    model = make_ensemble(cfg, FLAGS.obs_size, FLAGS.action_size)
    flops_row = mlp_flops_per_row([model.input_size, *hidden, model.target_size * 2])
    state = model.init(jax.random.PRNGKey(1))
    t = compile_and_time(model.fit, state, buf, jax.random.PRNGKey(2), repeats=FLAGS.repeats)
    n_train = _n_train(cfg)
    sps = FLAGS.epochs * n_train / t["seconds_per_call"]
    train_flops = 3 * flops_row * ens * sps
    print(
        f"train E={ens}: {sps:,.0f} samples/s ({train_flops / peak:.1%} of matmul peak), "
        f"compile {t['compile_s']:.1f}s", flush=True
    )
    return dict(
        kind="train", ensemble_size=ens, hidden=list(hidden), batch_size=FLAGS.batch_size,
        epochs=FLAGS.epochs, n_train=n_train, compile_s=t["compile_s"],
        seconds_per_fit=t["seconds_per_call"], cpu_seconds_per_fit=t["cpu_seconds_per_call"],
        samples_per_s=sps, member_samples_per_s=sps * ens, approx_flops_per_s=train_flops,
        fraction_of_matmul_peak=train_flops / peak,
    )


def propagation_rows(ens: int, hidden: tuple[int, ...], peak: float) -> list[dict]:
    """One PETS objective call per propagation mode: model-steps/s and FLOP/s."""
    obs_size, action_size = FLAGS.obs_size, FLAGS.action_size
    model = make_ensemble(_config(ens, hidden), obs_size, action_size)
    flops_row = mlp_flops_per_row([model.input_size, *hidden, model.target_size * 2])
    state = model.init(jax.random.PRNGKey(1))
    particles = -(-FLAGS.particles // ens) * ens
    n, h = FLAGS.candidates, FLAGS.horizon
    actions = jax.random.uniform(
        jax.random.PRNGKey(3), (n, h, action_size), minval=-1.0, maxval=1.0
    )
    obs0 = jnp.zeros((obs_size,))
    rows = []
    for mode in FLAGS.modes:
        pcfg = PropagationConfig(mode=mode, num_particles=particles)
        objective_for = make_model_objective(model, pcfg, reward_fn=_reward)

        def evaluate(st, o, k, a, objective_for=objective_for):
            return objective_for(st, o, k)(a)

        t = compile_and_time(
            evaluate, state, obs0, jax.random.PRNGKey(4), actions, repeats=FLAGS.repeats
        )
        model_steps = n * (1 if mode == "expectation" else particles) * h * (
            ens if mode == "expectation" else 1)
        msps = model_steps / t["seconds_per_call"]
        rows.append(dict(
            kind="propagation", mode=mode, ensemble_size=ens, hidden=list(hidden),
            candidates=n, particles=particles, horizon=h, compile_s=t["compile_s"],
            seconds_per_call=t["seconds_per_call"], model_steps_per_s=msps,
            flops_per_s=msps * flops_row, fraction_of_matmul_peak=msps * flops_row / peak,
        ))
        print(
            f"propagate E={ens} {mode}: {msps:,.0f} model-steps/s "
            f"({msps * flops_row / peak:.1%} of matmul peak), compile {t['compile_s']:.1f}s",
            flush=True,
        )
    return rows


def mbrl_lib_config(cfg: EnsembleConfig) -> dict:
    """benchmarks/mbrl_lib_model_training.py's config for the same fit as `cfg`."""
    wd = cfg.layer_weight_decays
    return {
        "obs_size": FLAGS.obs_size, "action_size": FLAGS.action_size,
        "ensemble_size": cfg.ensemble_size, "hidden": list(cfg.hidden_sizes),
        "rows": FLAGS.train_samples, "capacity": FLAGS.capacity,
        "batch_size": cfg.batch_size, "epochs": cfg.max_epochs,
        "val_ratio": cfg.holdout_ratio, "learning_rate": cfg.learning_rate,
        # mbrl-lib's ModelTrainer has one (Adam-coupled) L2 for all layers: their mean.
        "weight_decay": sum(wd) / len(wd), "bootstrap_permutes": not cfg.bootstrap,
        "fits": FLAGS.mbrl_fits, "seed": 0,
    }


def compare_mbrl_lib(hidden: tuple[int, ...], buf) -> dict:
    """The same fit in mbjax and mbrl-lib, in alternating rounds: all timed fits of each side."""
    cfg = _config(FLAGS.compare_ensemble, hidden)
    model = make_ensemble(cfg, FLAGS.obs_size, FLAGS.action_size)
    args = (model.init(jax.random.PRNGKey(1)), buf, jax.random.PRNGKey(2))
    compiled = jax.jit(model.fit).lower(*args).compile()
    block(compiled(*args))
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                          "mbrl_lib_model_training.py")
    mcfg = mbrl_lib_config(cfg)
    mine, theirs, cpu_mine, runs = [], [], [], []
    for r in range(FLAGS.rounds):
        times, cpu = steady_times(compiled, *args, repeats=FLAGS.repeats, min_time_s=1.0)
        mine += times
        cpu_mine.append(cpu)
        res = run_json_script(FLAGS.mbrl_python, script, mcfg, timeout_s=600.0)
        res["loadavg"] = os.getloadavg()
        runs.append(res)
        if "error" in res:
            print(f"mbrl-lib: {res['error']}")
            return {"config": mcfg, "error": res["error"], "runs": runs}
        theirs += res["fit_times_s"]
        print(f"round {r}: mbjax {statistics.median(times) * 1e3:.0f} ms/fit, mbrl-lib "
              f"{statistics.median(res['fit_times_s']) * 1e3:.0f} ms/fit, load "
              f"{res['loadavg'][0]:.1f}", flush=True)
    return {"config": mcfg, "mbjax_fit_times_s": mine,
            "mbjax_cpu_seconds_per_fit": statistics.median(cpu_mine),
            "mbrl_lib_fit_times_s": theirs, "runs": runs}


def comparison_summary(raw: dict, peak: float) -> dict:
    """Samples/s of both sides (median and best fit), their ratio and mbjax's share of peak."""
    if "error" in raw:
        return raw
    cfg = raw["config"]
    samples = cfg["epochs"] * (cfg["rows"] - math.floor(cfg["rows"] * cfg["val_ratio"]))
    flops_row = mlp_flops_per_row([FLAGS.obs_size + FLAGS.action_size, *cfg["hidden"],
                                   2 * FLAGS.obs_size])
    out = {
        "samples_per_fit": samples, "flops_per_sample": 3 * flops_row * cfg["ensemble_size"],
        "torch_threads": raw["runs"][0].get("torch_threads"),
        "mbrl_version": raw["runs"][0].get("mbrl_version"),
        "torch_version": raw["runs"][0].get("torch_version"),
        "matched": "same ensemble, data sizes, holdout split, epochs, batch, per-member "
                   "permutations, Adam lr, holdout passes (before + after each epoch); see the "
                   "module docstring",
        "mbjax_only_work": "non-finite row masking; a train-set pass on the returned snapshot",
    }
    for stat, f in (("median", statistics.median), ("best", min)):
        ours = samples / f(raw["mbjax_fit_times_s"])
        theirs = samples / f(raw["mbrl_lib_fit_times_s"])
        out[stat] = {
            "mbjax_samples_per_s": ours, "mbrl_lib_samples_per_s": theirs,
            "ratio": ours / theirs,
            "mbjax_fraction_of_matmul_peak": ours * out["flops_per_sample"] / peak,
            "mbrl_lib_fraction_of_matmul_peak": theirs * out["flops_per_sample"] / peak,
        }
    out["targets"] = {"ratio": 1.5, "fraction_of_matmul_peak": 0.5}
    return out


def main(_):
    t_start = time.perf_counter()
    hidden = tuple(int(h) for h in FLAGS.hidden)
    load_start = os.getloadavg()
    peak_start = matmul_peak_flops()
    print(f"matmul peak {peak_start / 1e9:.1f} GFLOP/s, loadavg {load_start}", flush=True)
    buf = _buffer(jax.random.PRNGKey(0), FLAGS.train_samples, FLAGS.capacity, FLAGS.obs_size,
                  FLAGS.action_size)
    comparison = compare_mbrl_lib(hidden, buf) if FLAGS.compare_mbrl_lib else None
    results = []
    for e_str in FLAGS.ensembles:
        results.append(train_row(int(e_str), hidden, buf, peak_start))
        if FLAGS.propagation:
            results += propagation_rows(int(e_str), hidden, peak_start)
    peak_end = matmul_peak_flops()
    peak = max(peak_start, peak_end)
    for r in results:  # ratios against the larger peak (the run's least disturbed measurement)
        r["fraction_of_matmul_peak"] = r.get("approx_flops_per_s", r.get("flops_per_s")) / peak
    payload = dict(
        benchmark="model_training", device=device_info(), matmul_peak_flops=peak,
        matmul_peak_flops_start=peak_start, matmul_peak_flops_end=peak_end,
        loadavg_start=load_start, loadavg_end=os.getloadavg(),
        wall_s=time.perf_counter() - t_start, obs_size=FLAGS.obs_size,
        action_size=FLAGS.action_size, results=results,
    )
    if comparison is not None:
        payload["mbrl_lib_comparison"] = dict(comparison_summary(comparison, peak), raw=comparison)
        s = payload["mbrl_lib_comparison"]
        for stat in ("median", "best"):
            if stat in s:
                m = s[stat]
                print(f"{stat}: mbjax {m['mbjax_samples_per_s']:,.0f} samples/s "
                      f"({m['mbjax_fraction_of_matmul_peak']:.1%} of peak), mbrl-lib "
                      f"{m['mbrl_lib_samples_per_s']:,.0f} samples/s: {m['ratio']:.2f}x")
    write_json(FLAGS.out, payload)
    print(f"wrote {FLAGS.out}")


if __name__ == "__main__":
    app.run(main, argv=normalise_argv(sys.argv))
