"""MBPO learning curves over seeds, next to MAAC, SAC alone and SAC with value expansion (MVE,
STEVE) on the same budget (one PNG per env with every variant's curve).

    python -m benchmarks.learning_mbpo --envs=brax/inverted_pendulum --seeds=3 --preset=cpu \
        --variants=mbpo,maac,sac_alone,sac_mve,sac_steve --out=benchmarks/results/learning_mbpo.json

For every env: `jax.jit(jax.vmap(make_train(config)))(keys)` runs all seeds as one program
(compile timed apart from the run), once per variant: MBPO; MAAC (MBPO's loop and model with
the pathwise actor, horizon of the MAAC preset of the same name); SAC alone (`sac.make_train` on
`mbpo.sac_alone(config)`: the same SAC loop, budget and SAC settings without the model); SAC
with MVE / STEVE targets (the same, with `value_expansion` and MBPO's model and refit interval).
Writes the per-epoch evaluation returns (mean / min / max over seeds and per seed) to --out and
one PNG per env next to it, after every variant. A results file that already exists is updated
variant by variant (kept when preset and seeds match), so envs and variants can be run in
separate invocations.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Callable

from absl import app, flags

from benchmarks.common import device_info, plot_curves, seed_curve, write_json

FLAGS = flags.FLAGS
flags.DEFINE_list("envs", ["brax/inverted_pendulum"], "Environments (mbjax.envs names).")
flags.DEFINE_integer("seeds", 3, "Number of seeds (>= 3 for a reported curve).")
flags.DEFINE_string("preset", "cpu", "MBPO preset: cpu, paper or test.")
flags.DEFINE_string("out", "benchmarks/results/learning_mbpo.json", "Output JSON path.")
VARIANTS = ("mbpo", "maac", "sac_alone", "sac_mve", "sac_steve")
flags.DEFINE_list("variants", ["mbpo", "sac_alone"], f"Runs per env, of {', '.join(VARIANTS)}.")
flags.DEFINE_integer("horizon", 3, "Model steps H of the sac_mve / sac_steve variants.")
flags.DEFINE_integer("num_epochs", None, "Override the preset's number of epochs.")

# Targets this benchmark checks (env -> (return, within env steps)).
TARGETS = {"brax/inverted_pendulum": (900.0, 10_000)}


def _variants(config: Any) -> dict[str, tuple[Callable, Any]]:
    """name -> (make_train, config) of every variant on MBPO `config`'s budget."""
    from mbjax.agents import maac, mbpo, sac

    alone = mbpo.sac_alone(config)
    fields = {f.name: getattr(config, f.name) for f in dataclasses.fields(mbpo.Config)}
    maac_config = maac.Config(**fields, horizon=maac.HORIZONS[FLAGS.preset])
    expansion = sac.ExpansionConfig(
        horizon=FLAGS.horizon, model=config.model, model_train_every=config.model_train_every,
        learned_reward=config.learned_reward, learned_termination=config.learned_termination,
        use_estimated_reward=config.use_estimated_reward)
    expanded = lambda kind: dataclasses.replace(alone, value_expansion=kind, expansion=expansion)
    return {"mbpo": (mbpo.make_train, config), "maac": (maac.make_train, maac_config),
            "sac_alone": (sac.make_train, alone),
            "sac_mve": (sac.make_train, expanded("mve")),
            "sac_steve": (sac.make_train, expanded("steve"))}


def main(argv: list[str]) -> None:
    del argv
    if FLAGS.seeds < 1:
        raise ValueError(f"--seeds={FLAGS.seeds} must be >= 1")
    unknown = sorted(set(FLAGS.variants) - set(VARIANTS))
    if unknown:
        raise ValueError(f"--variants={','.join(unknown)} is invalid; "
                         f"allowed: {', '.join(VARIANTS)}")
    from mbjax.agents import mbpo
    from mbjax.compile_cache import enable_compilation_cache

    enable_compilation_cache()
    payload: dict[str, Any] = {}
    if os.path.exists(FLAGS.out):
        with open(FLAGS.out) as f:
            payload = json.load(f)
    os.makedirs(os.path.dirname(os.path.abspath(FLAGS.out)), exist_ok=True)
    payload["device"] = device_info()
    payload.setdefault("envs", {})
    for env in FLAGS.envs:
        config = mbpo.preset(env, FLAGS.preset)
        if FLAGS.num_epochs is not None:
            config = dataclasses.replace(config, num_epochs=FLAGS.num_epochs)
        runs = {name: make for name, make in _variants(config).items()
                if name in FLAGS.variants}
        # Variants measured earlier on this env (same preset and seeds) are kept, so variants can
        # be run in separate invocations; the file is rewritten after every variant.
        earlier = payload["envs"].get(env, {})
        same = (earlier.get("preset"), earlier.get("seeds")) == (FLAGS.preset, FLAGS.seeds)
        results = dict(earlier.get("results", {})) if same else {}
        png = os.path.splitext(FLAGS.out)[0] + "_" + env.replace("/", "-") + ".png"
        for name, (make_train, cfg) in runs.items():
            print(f"{env} {name}: {FLAGS.seeds} seeds, {cfg.total_env_steps} env steps", flush=True)
            target = TARGETS.get(env, (None,))[0]
            results[name] = seed_curve(make_train, cfg, FLAGS.seeds, target)
            r = results[name]
            print(f"  final mean {r['final_return_mean']:.1f}  "
                  f"best mean {r['best_return_mean']:.1f}  compile {r['compile_s']:.0f} s  "
                  f"run {r['run_s']:.0f} s", flush=True)
            if env in TARGETS:
                r["target"]["within_env_steps"] = TARGETS[env][1]
            plot_curves(png, results, f"{env}: {', '.join(results)} ({FLAGS.preset} preset)")
            payload["envs"][env] = {
                "preset": FLAGS.preset, "seeds": FLAGS.seeds,
                "config": json.loads(json.dumps(dataclasses.asdict(config), default=str)),
                "results": results, "png": os.path.basename(png),
            }
            write_json(FLAGS.out, payload)
    print(f"wrote {FLAGS.out}")


if __name__ == "__main__":
    app.run(main)
