"""Distilling PETS's MPC into an MLP (DAgger, `--algo=distill`): return and action latency of
the student next to its teacher, measured in one run.

    python -m benchmarks.distill_mpc --env=cartpole_swingup \
        --out=benchmarks/results/distill_mpc.json [--config.<field>=<value> ...]

Trains the teacher (`experiments.train --algo=pets --preset=cpu`) into a temporary run directory
(or uses --teacher_run), distills it with the distill `cpu` preset, evaluates both policies on
the same --episodes episodes (`acting.policy_return`) and times one action of each (jitted,
steady state: the teacher plans a whole CEM/iCEM optimisation per action, the student is one
forward pass). Writes JSON with the machine, the matmul peak and both figures.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import tempfile
import time

import jax
import numpy as np
from absl import app, flags

from benchmarks.common import compile_and_time, device_info, matmul_peak_flops, write_json

FLAGS = flags.FLAGS
OVERRIDES: dict[str, str] = {}  # --config.<field>=<value> for the distill config
flags.DEFINE_string("env", "cartpole_swingup", "Environment.")
flags.DEFINE_string("teacher_run", "", "A trained teacher run (empty: train PETS cpu now).")
flags.DEFINE_integer("episodes", 8, "Evaluation episodes for both policies.")
flags.DEFINE_integer("seed", 0, "Seed of the distillation run and the evaluation.")
flags.DEFINE_string("out", "benchmarks/results/distill_mpc.json", "Output JSON path.")


def _train_teacher(out_dir: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "experiments.train", "--algo=pets",
                    f"--env={FLAGS.env}", "--preset=cpu", "--quiet", f"--output_dir={out_dir}"],
                   check=True)
    return time.perf_counter() - t0


def _returns(policy, env, num_steps: int) -> np.ndarray:
    from mbjax import acting

    keys = jax.random.split(jax.random.PRNGKey(1000 + FLAGS.seed), FLAGS.episodes)
    run = jax.jit(jax.vmap(lambda k: acting.policy_return(env, *policy, k, num_steps)))
    return np.asarray(run(keys))


def _latency(policy, env) -> dict:
    key = jax.random.PRNGKey(0)
    carry, obs = policy.init_carry(key), env.reset(key).obs
    return compile_and_time(lambda c, o, k: policy.act(c, o, k)[1], carry, obs, key)


def main(argv: list[str]) -> None:
    del argv
    import math

    from mbjax import configs, load_policy
    from mbjax.agents import distill
    from mbjax.agents.distill import dagger

    teacher_run, teacher_train_s = FLAGS.teacher_run, None
    tmp = tempfile.mkdtemp(prefix="distill_teacher_")
    if not teacher_run:
        teacher_run = os.path.join(tmp, "pets")
        teacher_train_s = _train_teacher(teacher_run)
    config = configs.apply_overrides(distill.preset(FLAGS.env, "cpu"), OVERRIDES)
    config = dataclasses.replace(config, teacher_run=teacher_run)
    t0 = time.perf_counter()
    make_policy, final, records = distill.train(FLAGS.env, config, seed=FLAGS.seed)
    distill_s = time.perf_counter() - t0
    teacher, _ = load_policy(teacher_run)
    student = make_policy(final)
    student = type(teacher)(*student)
    env = dagger.make_env(config)
    num_steps = math.ceil(env.episode_length / config.action_repeat)
    t_ret, s_ret = _returns(teacher, env, num_steps), _returns(student, env, num_steps)
    t_lat, s_lat = _latency(teacher, env), _latency(student, env)
    payload = {
        "benchmark": "distill_mpc", "device": device_info(),
        "matmul_peak_flops": matmul_peak_flops(), "env": FLAGS.env,
        "teacher_run": FLAGS.teacher_run or "trained here (PETS cpu preset)",
        "teacher_train_s": teacher_train_s, "distill_s": distill_s,
        "config": dataclasses.asdict(config),
        "teacher_return": {"mean": float(t_ret.mean()), "min": float(t_ret.min()),
                           "max": float(t_ret.max()), "per_episode": t_ret.tolist()},
        "student_return": {"mean": float(s_ret.mean()), "min": float(s_ret.min()),
                           "max": float(s_ret.max()), "per_episode": s_ret.tolist()},
        "student_over_teacher": float(s_ret.mean() / t_ret.mean()),
        "teacher_seconds_per_action": t_lat["seconds_per_call"],
        "student_seconds_per_action": s_lat["seconds_per_call"],
        "speedup": t_lat["seconds_per_call"] / s_lat["seconds_per_call"],
        "records": records,
    }
    write_json(FLAGS.out, payload)
    print(f"teacher {t_ret.mean():.1f}  student {s_ret.mean():.1f} "
          f"({payload['student_over_teacher']:.2f})  speedup {payload['speedup']:.0f}x")


if __name__ == "__main__":
    from experiments.cli import split_config_overrides

    sys.argv, OVERRIDES = split_config_overrides(sys.argv)
    app.run(main)
