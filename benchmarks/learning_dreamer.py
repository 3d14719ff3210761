"""Dreamer learning curves from states, seeds vmapped in one program.

    python -m benchmarks.learning_dreamer --env=dmc/CartpoleBalance --seeds=3 --preset=cpu \
        --out=benchmarks/results/dreamer_cartpole_balance.json

`jax.jit(jax.vmap(init))` and `jax.jit(jax.vmap(iteration))` of the Program (what
`mbjax.agents.sweep.run_sweep` runs: every seed in one compiled iteration); after each
iteration the JSON (evaluation return of the actor's mode per seed, mean / min / max, training
episode returns, env steps, wall and compile times) and a PNG are rewritten, so a run stopped
early leaves its partial curve. References (DreamerV3 / TD-MPC2 published scores) are written
beside the curve for the envs the issue names.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from benchmarks.common import block, device_info, write_json
from mbjax import acting
from mbjax.agents import dreamer

FLAGS = flags.FLAGS
flags.DEFINE_string("env", "dmc/CartpoleBalance", "Environment (mbjax.envs name).")
flags.DEFINE_integer("seeds", 3, "Number of seeds, vmapped in one program.")
flags.DEFINE_string("preset", "cpu", "Dreamer preset.")
flags.DEFINE_integer("iterations", None, "Override the preset's iterations.")
flags.DEFINE_enum("actor_grad", None, ["reinforce", "dynamics"], "Override Config.actor_grad.")
flags.DEFINE_string("out", "benchmarks/results/dreamer_cartpole_balance.json", "Output JSON.")
flags.DEFINE_bool("baselines_only", False, "Only (re)measure the untrained baselines and add "
                  "them to an existing --out file.")

# Published scores (mean over seeds) at env steps: DreamerV3's score files (DMC proprio) and
# TD-MPC2's, as quoted in issue 13; the issue's floor for this benchmark.
REFERENCES = {
    "dmc/CartpoleBalance": {"dreamerv3_50k": 490.0, "dreamerv3_50k_worst_seed": 369.0,
                            "floor_50k": 350.0},
    "dmc/CartpoleSwingup": {"dreamerv3_100k": 528.0, "tdmpc2_100k": 839.0},
}


def baselines(config: Any, episodes: int = 20) -> dict[str, float]:
    """Mean returns of untrained policies on the same env: uniform random actions and the
    zero action (what a learned policy should beat), over `episodes` episodes."""
    env = dreamer.make_env(config)
    steps = -(-env.episode_length // config.action_repeat)
    shape = (int(env.action_size),)

    def episode(key: jax.Array, random: bool) -> jax.Array:
        def act(carry, obs, k):
            a = jax.random.uniform(k, shape, minval=-1.0, maxval=1.0) if random else \
                jnp.zeros(shape)
            return carry, a, {}
        return acting.policy_return(env, lambda k: (), act, key, steps)

    keys = jax.random.split(jax.random.PRNGKey(12345), episodes)
    out = {}
    for name, random in (("uniform_random", True), ("zero_action", False)):
        rets = jax.jit(jax.vmap(lambda k, r=random: episode(k, r)))(keys)
        out[f"{name}_mean"] = float(jnp.mean(rets))
        out[f"{name}_min"] = float(jnp.min(rets))
        out[f"{name}_max"] = float(jnp.max(rets))
    out["episodes"] = episodes
    return out


def _plot(path: str, result: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = np.asarray(result["env_steps"])
    per_seed = np.asarray(result["return_per_seed"])
    fig, ax = plt.subplots(figsize=(6, 4))
    for s, curve in enumerate(per_seed):
        ax.plot(steps, curve, alpha=0.35, lw=1, label=f"seed {s}")
    ax.plot(steps, per_seed.mean(0), color="k", lw=2, label="mean")
    for name, value in result["references"].items():
        ax.axhline(value, ls="--", lw=1, color="gray")
        ax.text(steps[0], value, name, fontsize=7, va="bottom")
    for name in ("uniform_random", "zero_action"):
        value = result.get("baselines", {}).get(f"{name}_mean")
        if value is not None:
            ax.axhline(value, ls=":", lw=1, color="tab:red")
            ax.text(steps[-1], value, name, fontsize=7, va="bottom", ha="right", color="tab:red")
    ax.set_xlabel("env steps")
    ax.set_ylabel("evaluation return")
    ax.set_title(f"Dreamer ({result['preset']}) on {result['env']}, {len(per_seed)} seeds")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str]) -> None:
    del argv
    config = dreamer.preset(FLAGS.env, FLAGS.preset)
    if FLAGS.iterations is not None:
        config = dataclasses.replace(config, iterations=FLAGS.iterations)
    if FLAGS.actor_grad is not None:
        config = dataclasses.replace(config, actor_grad=FLAGS.actor_grad)
    if FLAGS.baselines_only:
        with open(FLAGS.out) as f:
            result = json.load(f)
        result["baselines"] = baselines(config)
        write_json(FLAGS.out, result)
        if result.get("return_per_seed"):
            _plot(os.path.splitext(FLAGS.out)[0] + ".png", result)
        print(result["baselines"])
        return
    program = dreamer.make_program(config)
    step = program.segments[0].step
    keys = jnp.stack([jax.random.PRNGKey(s) for s in range(FLAGS.seeds)])
    t0 = time.perf_counter()
    init = jax.jit(jax.vmap(program.init)).lower(keys).compile()
    state = block(init(keys))
    init_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    compiled = jax.jit(jax.vmap(step)).lower(state).compile()
    compile_s = time.perf_counter() - t0
    result: dict[str, Any] = {
        "env": FLAGS.env, "preset": FLAGS.preset, "seeds": FLAGS.seeds,
        "config": dataclasses.asdict(config),
        "updates_per_iteration": config.updates_per_block * config.blocks_per_iteration,
        "device": device_info(),
        "note": "wall times on a shared 2-core CPU under heavy load from other jobs",
        "init_and_prefill_s": init_s, "iteration_compile_s": compile_s,
        "env_steps": [], "return_per_seed": [], "train_return_per_seed": [],
        "model_loss": [], "wall_s": [], "nonfinite": False,
        "references": REFERENCES.get(FLAGS.env, {}),
        "baselines": baselines(config),
    }
    png = os.path.splitext(FLAGS.out)[0] + ".png"
    start = time.perf_counter()
    for i in range(config.iterations):
        state, m = compiled(state)
        m = block(m)
        result["env_steps"].append(int(np.asarray(m.env_steps)[0]))
        result["return_per_seed"].append(np.asarray(m.episode_return, float).tolist())
        result["train_return_per_seed"].append(
            np.nan_to_num(np.asarray(m.train_return, float), nan=-1.0).tolist())
        result["model_loss"].append(float(np.mean(m.model["model_loss"])))
        for name in ("policy_entropy", "value", "return_scale", "imagined_reward"):
            result.setdefault(name, []).append(float(np.mean(m.behavior[name])))
        result["wall_s"].append(time.perf_counter() - start)
        result["nonfinite"] |= bool(np.asarray(m.nonfinite).any())
        per_seed = np.asarray(result["return_per_seed"]).T  # [seeds, iterations]
        summary = dict(result, return_per_seed=per_seed.tolist(),
                       train_return_per_seed=np.asarray(result["train_return_per_seed"]).T.tolist(),
                       return_mean=per_seed.mean(0).tolist(), return_min=per_seed.min(0).tolist(),
                       return_max=per_seed.max(0).tolist(), iterations_done=i + 1)
        write_json(FLAGS.out, summary)
        _plot(png, summary)
        print(f"iter {i + 1}/{config.iterations} env_steps {result['env_steps'][-1]} "
              f"return {per_seed[:, -1].round(1).tolist()} wall {result['wall_s'][-1]:.0f}s",
              flush=True)


if __name__ == "__main__":
    app.run(main)
