"""Ensemble model throughput: training samples/s and propagation model-steps/s (PETS sizes).

    python -m benchmarks.model_training --out=benchmarks/results/model_training.json

Training: one `fit` call (a fixed number of epochs, no early stopping) on a buffer of random
transitions; samples/s counts transitions seen per second (each goes through all E members).
Propagation: one objective call over N candidates x P particles x H steps; model-steps/s counts
(one member, one particle, one step) per second. FLOP/s use 2 FLOPs per multiply-add of the MLP
(training: x3 for forward + backward) and are reported next to this machine's measured float32
matmul peak. Compile time is reported apart from the steady-state time.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from absl import app, flags

from benchmarks.common import compile_and_time, device_info, matmul_peak_flops, write_json
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


def main(_):
    hidden = tuple(int(h) for h in FLAGS.hidden)
    obs_size, action_size = FLAGS.obs_size, FLAGS.action_size
    peak = matmul_peak_flops()
    results = []
    buf = _buffer(jax.random.PRNGKey(0), FLAGS.train_samples, FLAGS.capacity, obs_size, action_size)
    for e_str in FLAGS.ensembles:
        ens = int(e_str)
        cfg = EnsembleConfig(
            ensemble_size=ens,
            hidden_sizes=hidden,
            batch_size=FLAGS.batch_size,
            max_epochs=FLAGS.epochs,
            patience=None,
            weight_decays=(2.5e-5, 5e-5, 7.5e-5, 7.5e-5, 1e-4) if len(hidden) == 4 else 0.0,
        )
        model = make_ensemble(cfg, obs_size, action_size)
        sizes = [model.input_size, *hidden, model.target_size * 2]
        flops_row = mlp_flops_per_row(sizes)
        state = model.init(jax.random.PRNGKey(1))

        t = compile_and_time(model.fit, state, buf, jax.random.PRNGKey(2), repeats=FLAGS.repeats)
        n_train = FLAGS.train_samples - math.floor(FLAGS.train_samples * cfg.holdout_ratio)
        samples = FLAGS.epochs * n_train
        sps = samples / t["seconds_per_call"]
        train_flops = 3 * flops_row * ens * sps
        results.append(
            dict(
                kind="train",
                ensemble_size=ens,
                hidden=list(hidden),
                batch_size=FLAGS.batch_size,
                epochs=FLAGS.epochs,
                n_train=n_train,
                compile_s=t["compile_s"],
                seconds_per_fit=t["seconds_per_call"],
                samples_per_s=sps,
                member_samples_per_s=sps * ens,
                approx_flops_per_s=train_flops,
                fraction_of_matmul_peak=train_flops / peak,
            )
        )
        print(
            f"train E={ens}: {sps:,.0f} samples/s ({train_flops / peak:.1%} of matmul peak), "
            f"compile {t['compile_s']:.1f}s"
        )

        particles = -(-FLAGS.particles // ens) * ens
        n, h = FLAGS.candidates, FLAGS.horizon
        actions = jax.random.uniform(
            jax.random.PRNGKey(3), (n, h, action_size), minval=-1.0, maxval=1.0
        )
        obs0 = jnp.zeros((obs_size,))
        for mode in FLAGS.modes:
            pcfg = PropagationConfig(mode=mode, num_particles=particles)
            objective_for = make_model_objective(model, pcfg, reward_fn=_reward)

            def evaluate(st, o, k, a, objective_for=objective_for):
                return objective_for(st, o, k)(a)

            t = compile_and_time(
                evaluate, state, obs0, jax.random.PRNGKey(4), actions, repeats=FLAGS.repeats
            )
            rows = n * (1 if mode == "expectation" else particles) * h
            model_steps = rows * (ens if mode == "expectation" else 1)
            msps = model_steps / t["seconds_per_call"]
            results.append(
                dict(
                    kind="propagation",
                    mode=mode,
                    ensemble_size=ens,
                    hidden=list(hidden),
                    candidates=n,
                    particles=particles,
                    horizon=h,
                    compile_s=t["compile_s"],
                    seconds_per_call=t["seconds_per_call"],
                    model_steps_per_s=msps,
                    flops_per_s=msps * flops_row,
                    fraction_of_matmul_peak=msps * flops_row / peak,
                )
            )
            print(
                f"propagate E={ens} {mode}: {msps:,.0f} model-steps/s "
                f"({msps * flops_row / peak:.1%} of matmul peak), compile {t['compile_s']:.1f}s"
            )

    write_json(
        FLAGS.out,
        dict(
            benchmark="model_training",
            device=device_info(),
            matmul_peak_flops=peak,
            obs_size=obs_size,
            action_size=action_size,
            results=results,
        ),
    )
    print(f"wrote {FLAGS.out}")


if __name__ == "__main__":
    app.run(main)
