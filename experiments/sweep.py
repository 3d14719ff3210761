"""A seed sweep as one vmapped program sharded over all local devices.

`python -m experiments.sweep --algo=pets --env=cartpole_swingup --seeds=8`
Each iteration (an episode for PETS, an epoch for MBPO) is one compiled call of the vmapped
iteration function over all seeds, with the seed axis sharded across `jax.local_devices()`
(jax.sharding), so a progress bar can follow iterations.
Writes seed_<s>/metrics.jsonl per seed, config.json, summary.json and curve.png (mean/min/max).
With 4 forced CPU devices: XLA_FLAGS=--xla_force_host_platform_device_count=4.
"""

from __future__ import annotations

import itertools
import os

from absl import flags

from experiments import cli

FLAGS = flags.FLAGS
flags.DEFINE_string("algo", "pets", cli.algo_help())
flags.DEFINE_string("env", "cartpole_swingup", "Environment name (see mbjax.envs.names()).")
flags.DEFINE_string("preset", "cpu", "Config preset: cpu, paper or test.")
flags.DEFINE_integer("seeds", 4, "Number of seeds (seed_start, seed_start+1, ...).")
flags.DEFINE_integer("seed_start", 0, "First seed.")
flags.DEFINE_string("output_dir", None, "Sweep directory (default runs/sweep_<algo>_<env>).")
flags.DEFINE_bool("quiet", False, "No progress bar or per-iteration lines.")


def run(overrides: dict[str, str]) -> None:
    import numpy as np

    from mbjax import agents, configs, envs
    from mbjax.agents.program import run_sweep
    from mbjax.logging import MetricsWriter, plot_curve, write_json_atomic

    algo = agents.get(FLAGS.algo)
    envs.check_name(FLAGS.env)
    if FLAGS.seeds < 1:
        raise ValueError(f"--seeds={FLAGS.seeds} is invalid; allowed: an int >= 1")
    if FLAGS.seed_start < 0:
        raise ValueError(f"--seed_start={FLAGS.seed_start} is invalid; allowed: an int >= 0")
    config = cli.build_config(algo, FLAGS.env, FLAGS.preset, overrides)
    out = FLAGS.output_dir or os.path.join(
        "runs", f"sweep_{FLAGS.algo}_{FLAGS.env.replace('/', '-')}"
    )
    os.makedirs(out, exist_ok=True)
    seeds = list(range(FLAGS.seed_start, FLAGS.seed_start + FLAGS.seeds))
    write_json_atomic(os.path.join(out, "config.json"), {
        "algo": FLAGS.algo, "env": FLAGS.env, "seeds": seeds, "config": configs.to_dict(config),
    })
    writers = {s: MetricsWriter(os.path.join(out, f"seed_{s}", "metrics.jsonl")) for s in seeds}
    for w in writers.values():
        w.rewrite([])
    program = algo.make_program(config)
    bar = cli.progress(algo, program.num_iterations, f"sweep {FLAGS.algo} {FLAGS.env}",
                       FLAGS.quiet)
    iterations = itertools.count()  # records need not name their iteration, so count here

    def progress(per_seed_records):
        iteration = next(iterations)
        returns = []
        for s, record in zip(seeds, per_seed_records, strict=True):
            writers[s].write(record)
            returns.append(record["episode_return"])
        bar.update(1)
        if not FLAGS.quiet:
            bar.write(
                f"{algo.iteration_unit}={iteration}  env_steps={per_seed_records[0]['env_steps']}"
                f"  return mean={np.mean(returns):.2f} min={np.min(returns):.2f} "
                f"max={np.max(returns):.2f}"
            )

    _, records, info = run_sweep(program, seeds, progress_fn=progress)
    bar.close()
    returns = np.array([[r["episode_return"] for r in recs] for recs in records])
    steps = [r["env_steps"] for r in records[0]]
    plot_curve(os.path.join(out, "curve.png"), steps, returns,
               title=f"{FLAGS.algo} on {FLAGS.env}, {len(seeds)} seeds")
    write_json_atomic(os.path.join(out, "summary.json"), {
        **info, "seeds": seeds, "env_steps": steps,
        "return_mean": returns.mean(0), "return_min": returns.min(0),
        "return_max": returns.max(0),
    })
    print(f"done: {len(seeds)} seeds on {info['num_devices']} device(s), final return mean "
          f"{returns[:, -1].mean():.2f} -> {out}")


if __name__ == "__main__":
    cli.launch(run)
