"""Device check: one prepared run for a lent accelerator (works on CPU too).

    python -m benchmarks.device_check --out=benchmarks/results/device_check_<gpu>.json \
        [--quick] [--max_seconds=500] [--sections=pets,pets_envs] [--pets_seeds=1,4,16] \
        [--budgets=pets=900]

Records, with the device named (`benchmarks.common.device_info()`) and the float32 matmul peak
measured in the same run:

- planner: CEM plans/s and share of the matmul peak at the sizes of
  `benchmarks/planner_throughput.py` (its `SIZES`, `run_row` and `estimate_s`), at batch 1 and
  large vmapped batches (256 and 1024 on an accelerator, 16 on CPU);
- pets: wall time of one PETS learning episode (refit + MPC) of a small preset on
  `cartpole_swingup` for 1, 8 and 64 vmapped seeds (`jax.jit(jax.vmap(step))`, compile time apart
  from run time, after block_until_ready), and each time relative to one seed's;
- pets_envs: one PETS learning episode of one seed with `num_envs` B = 1 and 8 environments
  (the planner vmapped over them), env steps per wall second and B=8's ratio to B=1's;
- env: env steps/s at batch 1k and 64k (`benchmarks/env_throughput.measure`);
- dreamer: Dreamer's compiled iteration (env steps plus updates at the preset's train ratio) on
  `cartpole_swingup`, "paper_vision" (64x64 pixels, DreamerV3's sizes) on an accelerator, "cpu"
  on a CPU: ms per update, env steps/s, the preset's whole run projected (1 and 4 seeds on GPU).

Every section is guarded (an exception is recorded and the next section runs) and has its own
time budget inside a global deadline (`--max_seconds`); an item whose estimated time does not fit
in what is left is skipped with a note. The JSON is written atomically after every measurement,
so a killed run keeps what it measured. `--quick` shrinks everything (about a minute on CPU).
"""

from __future__ import annotations

import dataclasses
import functools
import re
import time
import traceback
from typing import Any, Callable, Sequence

import jax
from absl import app, flags

from benchmarks import env_throughput, planner_throughput
from benchmarks.common import compile_and_time, device_info, matmul_peak_flops, write_json

FLAGS = flags.FLAGS



flags.DEFINE_string("out", "", "Output JSON (default benchmarks/results/device_check_<kind>.json).")
flags.DEFINE_bool("quick", False, "Shrink every section (about a minute on CPU; for the test).")
flags.DEFINE_float("max_seconds", 500.0, "Global deadline for the whole run, in seconds.")
flags.DEFINE_list("sections", [], "Sections to run (default all): matmul_peak, planner, pets, "
                  "pets_envs, env.")
flags.DEFINE_list("budgets", [], "Section budgets in seconds replacing the settings', e.g. "
                  "pets=900,pets_envs=300 (a CPU sweep-scaling run needs more than the defaults).")
flags.DEFINE_list("pets_seeds", [], "Seed counts of the pets section (default: 1,64,8 on an "
                  "accelerator, the settings' otherwise), e.g. 1,4,16 for a CPU sweep scaling.")


@dataclasses.dataclass(frozen=True)
class Settings:
    """What the run measures; `settings_for` picks them from --quick and the device platform."""

    peak_size: int
    planner_sizes: tuple[str, ...]
    planner_batches: tuple[int, ...]
    pets_preset: str
    pets_episode_length: int | None
    pets_seeds: tuple[int, ...]
    pets_envs: tuple[int, ...]
    env_names: tuple[str, ...]
    env_batches: tuple[int, ...]
    env_steps: int
    dreamer_preset: str
    dreamer_seeds: tuple[int, ...]
    budgets_s: dict[str, float]


def settings_for(quick: bool, platform: str) -> Settings:
    """The full run's settings (large batches on an accelerator), or tiny ones for --quick.

    PETS seed counts run in list order, 64 before 8: the 1-vs-64 ratio is the issue's figure.
    """
    if quick:
        return Settings(
            peak_size=512, planner_sizes=("tiny",), planner_batches=(8,), pets_preset="test",
            pets_episode_length=20, pets_seeds=(1, 4), pets_envs=(1, 2),
            env_names=("cartpole_swingup",),
            env_batches=(16, 256), env_steps=10, dreamer_preset="test", dreamer_seeds=(1,),
            budgets_s={"matmul_peak": 10.0, "planner": 20.0, "pets": 40.0, "pets_envs": 20.0,
                       "env": 15.0, "dreamer": 30.0},
        )
    accelerator = platform != "cpu"
    return Settings(
        peak_size=4096 if accelerator else 2048, planner_sizes=tuple(planner_throughput.SIZES),
        planner_batches=(1, 256, 1024) if accelerator else (1, 16), pets_preset="cpu",
        pets_episode_length=None, pets_seeds=(1, 64, 8), pets_envs=(1, 8),
        env_names=tuple(env_throughput.TOUR_ENVS), env_batches=(1024, 65536), env_steps=100,
        dreamer_preset="paper_vision" if accelerator else "cpu",
        dreamer_seeds=(1, 4) if accelerator else (1,),
        budgets_s={"matmul_peak": 20.0, "planner": 110.0, "pets": 200.0, "pets_envs": 90.0,
                   "env": 70.0, "dreamer": 150.0},
    )


class Report:
    """The JSON payload, written atomically to `path` after every change."""

    def __init__(self, path: str, payload: dict[str, Any]) -> None:
        self.path = path
        self.payload = payload
        self.sections: dict[str, dict[str, Any]] = payload.setdefault("sections", {})

    def section(self, name: str, **fields: Any) -> dict[str, Any]:
        """A fresh section entry (rows, skipped, errors) saved under `name`."""
        entry = {"status": "running", "rows": [], "skipped": [], "errors": [], **fields}
        self.sections[name] = entry
        self.save()
        return entry

    def save(self) -> None:
        write_json(self.path, self.payload)


def _error(exc: BaseException) -> str:
    """The exception's type, message and the last lines of its traceback, on one line."""
    tail = traceback.format_exception(type(exc), exc, exc.__traceback__)[-3:]
    return " | ".join(line.strip().replace("\n", " / ") for line in tail)


def run_items(report: Report, entry: dict[str, Any], items: Sequence[Any], until: float,
              measure: Callable[[Any], dict[str, Any]],
              estimate: Callable[[Any, float], float], label: Callable[[dict], str]) -> None:
    """Measures each item unless its estimate (given the previous item's wall time) does not fit
    before `until`; one failing item is recorded in the entry's errors and the rest still run."""
    prev_wall = 0.0
    for item in items:
        left = until - time.perf_counter()
        est = estimate(item, prev_wall)
        if left <= 0 or est > left:
            entry["skipped"].append({"item": repr(item), "estimated_s": round(est, 1),
                                     "left_s": round(left, 1),
                                     "note": "skipped: estimated time exceeds what is left"})
            print(f"  skip {item!r}: ~{est:.0f}s > {left:.0f}s left", flush=True)
            continue
        t0 = time.perf_counter()
        try:
            row = measure(item)
        except Exception as exc:  # noqa: BLE001 - recorded, and the next item runs
            entry["errors"].append({"item": repr(item), "error": _error(exc)})
            print(f"  error {item!r}: {_error(exc)}", flush=True)
        else:
            row["wall_s"] = time.perf_counter() - t0
            entry["rows"].append(row)
            print("  " + label(row), flush=True)
        prev_wall = time.perf_counter() - t0
        report.save()


# ------------------------------------------------------------------ sections


def peak_section(report: Report, entry: dict, s: Settings, until: float) -> None:
    """The float32 matmul peak of this device (the planner rows' reference)."""
    del until
    peak = matmul_peak_flops(s.peak_size)
    report.payload["matmul_peak_flops"] = peak
    entry["rows"].append({"size": s.peak_size, "flops_per_s": peak})
    print(f"  matmul peak ({s.peak_size}^3 float32): {peak / 1e9:.1f} GFLOP/s", flush=True)


def planner_section(report: Report, entry: dict, s: Settings, until: float) -> None:
    """CEM at each benchmark size (its own propagation mode) and batch; batch 1 first."""
    sizes, estimate_s, run_row = (planner_throughput.SIZES, planner_throughput.estimate_s,
                                  planner_throughput.run_row)
    peak = report.payload["matmul_peak_flops"]
    if not peak:
        raise RuntimeError("no matmul peak was measured (see the matmul_peak section)")
    items = [(name, b) for b in s.planner_batches for name in s.planner_sizes]

    def measure(item: tuple[str, int]) -> dict[str, Any]:
        size = sizes[item[0]]  # quick=True: run_row's short timing loop, to fit the budget
        return run_row(size, "cem", size.mode, item[1], peak, quick=True)

    def estimate(item: tuple[str, int], prev_wall: float) -> float:
        del prev_wall  # x2: batched rows on a GPU stay well below the 30% of peak assumed there
        size = sizes[item[0]]
        return (1.0 if item[1] == 1 else 2.0) * estimate_s(size, "cem", size.mode, item[1], peak)

    run_items(report, entry, items, until, measure, estimate, lambda r: (
        f"planner {r['size']:>22} cem/{r['mode']:<11} B={r['batch']:<5} "
        f"{r['plans_per_s']:10.2f} plans/s {r['fraction_of_matmul_peak']:6.1%} of peak "
        f"compile {r['compile_s']:.1f}s"))


def _pets_run(s: Settings, num_envs: int) -> tuple[Any, Any, Any, Callable, Callable]:
    """(config, PETS bundle, Program, seed-episode step, first learning-episode step) of the
    measured PETS run: the settings' preset on cartpole_swingup with `num_envs` envs; the steps
    are the ones the runners execute."""
    from mbjax.agents import pets
    from mbjax.agents.program import guard_step

    config = dataclasses.replace(pets.preset("cartpole_swingup", s.pets_preset),
                                 num_envs=num_envs)
    if s.pets_episode_length is not None:
        config = dataclasses.replace(config, episode_length=s.pets_episode_length)
    bundle = pets.make_pets(config)
    program = pets.make_program(config, bundle)
    seed_step, learn_step = (guard_step(seg.step, program.on_nonfinite)
                             for seg in program.segments[:2])
    return config, bundle, program, seed_step, learn_step


def pets_section(report: Report, entry: dict, s: Settings, until: float) -> None:
    """One PETS learning episode (with its model fit) vmapped over 1, 8, 64 seeds.

    The states come from `init` + one random seed episode for the largest seed count (one
    compile), sliced to each count; the learning step is the one the runners execute.
    """
    from mbjax.agents.program import guard_step

    config, bundle, program, seed_step, learn_step = _pets_run(s, num_envs=1)
    env_steps = bundle.num_steps * config.action_repeat
    t0 = time.perf_counter()
    keys = jax.random.split(jax.random.PRNGKey(0), max(s.pets_seeds))
    states, _ = jax.jit(jax.vmap(lambda k: seed_step(program.init(k))))(keys)
    jax.block_until_ready(states)
    entry.update(preset=s.pets_preset, env="cartpole_swingup", env_steps_per_episode=env_steps,
                 setup_s=time.perf_counter() - t0)
    print(f"  pets setup (init + seed episode, {max(s.pets_seeds)} seeds): "
          f"{entry['setup_s']:.1f}s", flush=True)
    first: list[tuple[int, float]] = []  # (seeds, seconds) of the first row measured

    # The same episode without its model fit: where the time goes (fit vs planning).
    plan_step = guard_step(functools.partial(bundle.learning_episode, fit=False),
                           program.on_nonfinite)

    def measure(n: int) -> dict[str, Any]:
        sub = jax.tree_util.tree_map(lambda x: x[:n], states)
        t = compile_and_time(jax.vmap(learn_step), sub, repeats=1, min_time_s=0.0)
        sec = t["seconds_per_call"]
        plan = compile_and_time(jax.vmap(plan_step), sub, repeats=1, min_time_s=0.0)
        first.append((n, sec))
        return {"seeds": n, "compile_s": t["compile_s"], "seconds_per_episode": sec,
                "seconds_planning": plan["seconds_per_call"],
                "seconds_fit": sec - plan["seconds_per_call"],
                "calls": t["calls"], "env_steps_per_s": n * env_steps / sec,
                "time_relative_to_first": sec / first[0][1], "first_seeds": first[0][0]}

    run_items(report, entry, s.pets_seeds, until, measure, lambda n, prev: prev,
              lambda r: (f"pets {r['seeds']:>3} seeds: {r['seconds_per_episode']:8.2f}s per "
                         f"episode ({r['time_relative_to_first']:.2f}x {r['first_seeds']} "
                         "seed(s)), "
                         f"{r['env_steps_per_s']:10,.0f} env steps/s, planning "
                         f"{r['seconds_planning']:.2f}s, fit {r['seconds_fit']:.2f}s, "
                         f"compile {r['compile_s']:.1f}s"))


def pets_envs_section(report: Report, entry: dict, s: Settings, until: float) -> None:
    """One PETS learning episode of one seed stepping `num_envs` B = 1 and 8 environments (the
    planner vmapped over them): env steps per wall second, and B=8's relative to B=1's."""
    first: list[float] = []  # env steps/s of B=1

    def measure(num_envs: int) -> dict[str, Any]:
        config, bundle, program, seed_step, learn_step = _pets_run(s, num_envs)
        state, _ = jax.jit(lambda k: seed_step(program.init(k)))(jax.random.PRNGKey(0))
        t = compile_and_time(learn_step, state, repeats=1, min_time_s=0.0)
        rate = num_envs * bundle.num_steps * config.action_repeat / t["seconds_per_call"]
        first.append(rate)
        return {"num_envs": num_envs, "compile_s": t["compile_s"],
                "seconds_per_episode": t["seconds_per_call"], "env_steps_per_s": rate,
                "env_steps_per_s_relative_to_b1": rate / first[0]}

    run_items(report, entry, s.pets_envs, until, measure, lambda n, prev: 2 * prev,
              lambda r: (f"pets B={r['num_envs']}: {r['seconds_per_episode']:.2f}s per episode, "
                         f"{r['env_steps_per_s']:,.0f} env steps/s "
                         f"({r['env_steps_per_s_relative_to_b1']:.2f}x B=1)"))


def env_section(report: Report, entry: dict, s: Settings, until: float) -> None:
    """Env steps/s of each env at each batch size (`env_throughput.measure`)."""
    items = [(name, b) for name in s.env_names for b in s.env_batches]
    entry.update(steps=s.env_steps)

    def measure(item: tuple[str, int]) -> dict[str, Any]:
        (row,) = env_throughput.measure(item[0], [item[1]], s.env_steps, repeats=3)
        return row

    run_items(report, entry, items, until, measure, lambda item, prev: prev,
              lambda r: (f"env {r['env']:>26} B={r['batch_size']:<6} "
                         f"{r['steps_per_s']:14,.0f} steps/s compile {r['compile_s']:.1f}s"))


DREAMER_ENV = "cartpole_swingup"  # mbjax's own renderer: the Dreamer-from-pixels task
DREAMER_BLOCKS = 4  # train_every-step blocks (each with its updates) per measured iteration


def dreamer_section(report: Report, entry: dict, s: Settings, until: float) -> None:
    """Dreamer's compiled iteration (env steps + world-model and actor-critic updates at the
    preset's train ratio) vmapped over seeds, on `cartpole_swingup` (from pixels with
    "paper_vision", the GPU figure of the latent-models issue): seconds per update, env steps/s,
    and the preset's whole run projected from them. The measured iteration is shortened to
    DREAMER_BLOCKS blocks (the preset's 1000-step iterations would not fit the budget); the
    update itself is the preset's (model sizes, batch, horizon)."""
    from mbjax.agents import dreamer

    full = dreamer.preset(DREAMER_ENV, s.dreamer_preset)
    config = dataclasses.replace(full, iterations=1, num_eval_episodes=0,
                                 steps_per_iteration=DREAMER_BLOCKS * full.train_every)
    program = dreamer.make_program(config)
    updates = config.blocks_per_iteration * config.updates_per_block
    env_steps = config.steps_per_iteration * config.num_envs * config.action_repeat
    entry.update(preset=s.dreamer_preset, env=DREAMER_ENV, pixels=config.pixels,
                 updates_per_iteration=updates, env_steps_per_iteration=env_steps,
                 train_ratio=config.train_ratio, batch=[config.model.batch_size,
                                                        config.model.seq_len])

    def measure(n: int) -> dict[str, Any]:
        keys = jax.random.split(jax.random.PRNGKey(0), n)
        states = jax.block_until_ready(jax.jit(jax.vmap(program.init))(keys))
        step = jax.vmap(program.segments[0].step)
        t = compile_and_time(step, states, repeats=2, min_time_s=0.0)
        sec = t["seconds_per_call"]
        run_s = sec * full.iterations * full.steps_per_iteration / config.steps_per_iteration
        return {"seeds": n, "compile_s": t["compile_s"], "seconds_per_iteration": sec,
                "seconds_per_update": sec / max(updates, 1), "updates_per_s": n * updates / sec,
                "env_steps_per_s": n * env_steps / sec,
                "projected_run_hours": run_s / 3600, "projected_run_env_steps":
                    full.total_agent_steps * full.num_envs * full.action_repeat}

    run_items(report, entry, s.dreamer_seeds, until, measure, lambda n, prev: 2 * prev,
              lambda r: (f"dreamer {s.dreamer_preset} {r['seeds']} seed(s): "
                         f"{r['seconds_per_update'] * 1e3:.1f} ms per update, "
                         f"{r['env_steps_per_s']:,.0f} env steps/s, whole run "
                         f"~{r['projected_run_hours']:.1f} h, compile {r['compile_s']:.1f}s"))


# ------------------------------------------------------------------ main


def guarded(report: Report, name: str, budget_s: float, deadline: float,
            body: Callable[[dict[str, Any], float], None]) -> None:
    """Runs `body(entry, until)` as section `name` with its budget inside the global deadline;
    an exception is recorded as the section's error and the run goes on."""
    start = time.perf_counter()
    until = min(start + budget_s, deadline)
    entry = report.section(name, budget_s=budget_s)
    print(f"[{name}] budget {until - start:.0f}s", flush=True)
    try:
        body(entry, until)
        entry["status"] = "ok" if not entry["errors"] and not entry["skipped"] else "partial"
    except Exception as exc:  # noqa: BLE001 - recorded, and the next section runs
        entry["status"] = "error"
        entry["error"] = _error(exc)
        print(f"[{name}] error: {entry['error']}", flush=True)
    entry["wall_s"] = time.perf_counter() - start
    report.save()


def default_out(info: dict[str, Any]) -> str:
    """benchmarks/results/device_check_<device kind>.json, the kind made file-name safe."""
    kind = re.sub(r"[^A-Za-z0-9._-]+", "_", str(info["device_kind"])).strip("_") or "unknown"
    return f"benchmarks/results/device_check_{kind}.json"


def main(argv: Sequence[str]) -> None:
    del argv
    t_start = time.perf_counter()
    deadline = t_start + FLAGS.max_seconds
    info = device_info()
    s = settings_for(FLAGS.quick, info["platform"])
    if FLAGS.pets_seeds:
        s = dataclasses.replace(s, pets_seeds=tuple(int(n) for n in FLAGS.pets_seeds))
    if FLAGS.budgets:
        given = dict(item.split("=", 1) for item in FLAGS.budgets)
        s = dataclasses.replace(s, budgets_s={**s.budgets_s,
                                              **{k: float(v) for k, v in given.items()}})
    out = FLAGS.out or default_out(info)
    print(f"device: {info['platform']} {info['device_kind']} x{info['num_devices']}; "
          f"writing {out}", flush=True)
    report = Report(out, {"benchmark": "device_check", "device": info, "quick": FLAGS.quick,
                          "max_seconds": FLAGS.max_seconds, "complete": False,
                          "settings": dataclasses.asdict(s), "matmul_peak_flops": None})
    sections = (("matmul_peak", peak_section), ("planner", planner_section),
                ("pets", pets_section), ("pets_envs", pets_envs_section), ("env", env_section),
                ("dreamer", dreamer_section))
    chosen = FLAGS.sections or [name for name, _ in sections]
    unknown = sorted(set(chosen) - {name for name, _ in sections})
    if unknown:
        raise app.UsageError(f"--sections: unknown {unknown}; allowed: "
                             f"{[name for name, _ in sections]}")
    for name, fn in sections:
        if name not in chosen:
            continue
        guarded(report, name, s.budgets_s[name], deadline,
                lambda entry, until, fn=fn: fn(report, entry, s, until))
    report.payload.update(complete=True, wall_s=time.perf_counter() - t_start)
    report.save()
    print(f"wrote {out} ({report.payload['wall_s']:.0f}s)", flush=True)


if __name__ == "__main__":
    app.run(main)
