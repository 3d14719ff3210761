"""Bad inputs to the train and evaluate CLIs, as a new user types them (issue 11).

Every case ends in exit code 2 and one line on stderr (`error: ...`) naming the value, with
nothing a run wrote changed; the correct-result cases check what is written. One finished run
(module fixture) serves every case that needs a run directory: a case copies it first.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import cli_runner
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASE = ["--algo=pets", "--env=point_mass", "--preset=test", "--seed=1", "--quiet"]
EPISODES = "--config.num_episodes=4"
POP32 = "--config.planner_config.population=32"  # the test preset's CEM population is 64


def _cli(module, *args, timeout=300):
    """`python -m module *args` (forked from a pre-imported server: see cli_runner)."""
    return cli_runner.run(module, *args, env=dict(os.environ, PYTHONUNBUFFERED="1"),
                          timeout=timeout)


def _files(path):
    """{relative path: bytes} of every file under `path` (to show nothing was changed)."""
    out = {}
    for root, _, names in os.walk(path):
        for name in names:
            full = os.path.join(root, name)
            with open(full, "rb") as f:
                out[os.path.relpath(full, path)] = f.read()
    return out


def _metrics(path):
    with open(os.path.join(path, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished 4-episode PETS run (seed 1) on point_mass."""
    out = str(tmp_path_factory.mktemp("finished") / "run")
    proc = _cli("experiments.train", *BASE, EPISODES, f"--output_dir={out}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


def _copy(finished, tmp):
    run = str(tmp / "run")
    shutil.copytree(finished, run)
    return run


def _edit_config(run, **changes):
    path = os.path.join(run, "config.json")
    with open(path) as f:
        info = json.load(f)
    info.update(changes)
    with open(path, "w") as f:
        json.dump(info, f)


# Each case: (id, setup(finished, tmp) -> (module, args, run dir to keep unchanged or None),
# text the one-line message must contain).
def _train(*args):
    return lambda finished, tmp: ("experiments.train", [*BASE, f"--output_dir={tmp / 'new'}",
                                                        *args], None)


def _train_in(prepare, *args):
    """Train with --output_dir = a copy of the finished run, changed by `prepare(run)`."""
    def setup(finished, tmp):
        run = _copy(finished, tmp)
        prepare(run)
        return "experiments.train", [*BASE, EPISODES, f"--output_dir={run}", *args], run
    return setup


def _evaluate(prepare, *args):
    """Evaluate a copy of the finished run changed by `prepare(run)` (None: no --run_dir)."""
    def setup(finished, tmp):
        run = _copy(finished, tmp)
        prepare(run)
        return "experiments.evaluate", [f"--run_dir={run}", "--episodes=2", *args], run
    return setup


def _nothing(run):
    pass


def _remove(name):
    def prepare(run):
        path = os.path.join(run, name)
        shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
    return prepare


def _write(name, text):
    def prepare(run):
        with open(os.path.join(run, name), "w") as f:
            f.write(text)
    return prepare


def _file_at(tmp_name):
    def setup(finished, tmp):
        (tmp / "afile").write_text("not a directory")
        return "experiments.train", [*BASE, f"--output_dir={tmp / tmp_name}"], None
    return setup


def _evaluate_file(finished, tmp):
    (tmp / "afile").write_text("not a run")
    return "experiments.evaluate", [f"--run_dir={tmp / 'afile'}"], None


def _only_checkpoints(finished, tmp):
    # Case 1: another run's checkpoints/ without its metrics.jsonl or config.json.
    run = str(tmp / "other")
    shutil.copytree(os.path.join(finished, "checkpoints"), os.path.join(run, "checkpoints"))
    return "experiments.train", [*BASE, EPISODES, "--seed=2", f"--output_dir={run}"], run


def _sweep(*args):
    def setup(finished, tmp):
        return ("experiments.sweep", ["--algo=pets", "--env=point_mass", "--preset=test",
                                      "--seeds=2", "--quiet", f"--output_dir={tmp / 'new'}",
                                      *args], None)
    return setup


GRID_ALPHA = "--grid.planner_config.alpha=0.1,0.2"
CASES = [
    # Seeds (case 8): uint32 only, no aliasing, no OverflowError.
    ("seed_negative", _train("--seed=-1"), "--seed=-1 is invalid"),
    ("seed_2_32", _train("--seed=4294967296"), "--seed=4294967296 is invalid; allowed: an int"),
    ("seed_aliasing", _train("--seed=99999999999"), "--seed=99999999999 is invalid"),
    ("seed_2_64", _train("--seed=18446744073709551616"), "--seed=18446744073709551616"),
    ("seed_not_int", _train("--seed=abc"), "--seed=abc"),
    ("unknown_flag", _train("--episodes=3"), "episodes"),
    # Config values (case 10).
    ("config_env", _train("--config.env=cartpole_swingup"), "--config.env='cartpole_swingup'"),
    ("lr_inf", _train("--config.model.learning_rate=inf"), "learning_rate=inf is invalid"),
    ("lr_nan", _train("--config.model.learning_rate=nan"), "learning_rate=nan is invalid"),
    ("sac_lr_inf", _train("--algo=sac", "--config.sac.actor_lr=inf"), "actor_lr=inf is invalid"),
    ("mbpo_lr_neg_inf", _train("--algo=mbpo", "--config.sac.critic_lr=-inf"),
     "critic_lr=-inf is invalid"),
    ("int_as_float", _train("--config.num_episodes=1e3"), "expected int"),
    ("bad_env", _train("--env=nowhere"), "nowhere"),
    ("particles_vs_members", _train("--config.propagation.num_particles=3"), "num_particles"),
    # Output directories (cases 1 and 9).
    ("output_is_file", _file_at("afile"), "it is a file"),
    ("output_under_file", _file_at("afile/run"), "is a file"),
    ("output_holds_checkpoints", _only_checkpoints, "a new or empty directory"),
    ("output_holds_run", _train_in(_nothing), "pass --resume"),
    # Resume (cases 2 and 3).
    ("resume_changed_flag", _train_in(_nothing, "--resume", POP32),
     "config.planner_config.population: 64 -> 32"),
    ("resume_other_seed", _train_in(_nothing, "--resume", "--seed=2"), "seed: 1 -> 2"),
    ("resume_no_config_changed_flag", _train_in(_remove("config.json"), "--resume", POP32),
     "config.planner_config.population: 64 -> 32"),
    ("resume_no_checkpoints", _train_in(_remove("checkpoints"), "--resume"),
     "no checkpoint to resume"),
    ("resume_corrupt_config", _train_in(_write("config.json", "{not json"), "--resume"),
     "config.json' is unreadable"),
    ("resume_sweep_dir", _train_in(lambda run: _edit_config(run, seeds=[0, 1]), "--resume"),
     "holds a sweep, not a run"),
    ("resume_nothing_there", _train("--resume"), "a directory holding a run"),
    # Evaluate.
    ("eval_no_run_dir", lambda f, t: ("experiments.evaluate", ["--episodes=2"], None),
     "--run_dir is required"),
    ("eval_missing_dir", lambda f, t: ("experiments.evaluate", [f"--run_dir={t / 'no'}"], None),
     "does not exist"),
    ("eval_file", _evaluate_file, "not a directory"),
    ("eval_not_a_run", _evaluate(_remove("config.json")), "holds no config.json"),
    ("eval_no_checkpoints", _evaluate(_remove("checkpoints")), "holds no checkpoints/"),
    ("eval_corrupt_config", _evaluate(_write("config.json", "[1, 2")), "is unreadable"),
    ("eval_unknown_algo", _evaluate(lambda run: _edit_config(run, algo="ppo")),
     "unknown algorithm 'ppo'"),
    ("eval_unknown_field", _evaluate(lambda run: _edit_config(
        run, config={"num_episodez": 3})), "unknown config field 'num_episodez'"),
    ("eval_sweep", _evaluate(lambda run: _edit_config(run, seeds=[0, 1])), "holds a sweep"),
    ("eval_zero_episodes", _evaluate(_nothing, "--episodes=0"), "--episodes=0 is invalid"),
    ("eval_bad_seed", _evaluate(_nothing, "--seed=4294967296"), "--seed=4294967296 is invalid"),
    ("eval_config_override", _evaluate(_nothing, "--config.num_episodes=3"),
     "no --config overrides"),
    ("eval_out_is_dir", _evaluate(_nothing, "--out=/"), "--out='/' is invalid"),
    ("eval_video_size", _evaluate(_nothing, "--video_size=0"), "--video_size=0 is invalid"),
    ("eval_stochastic_pets", _evaluate(_nothing, "--stochastic"),
     "pets policy option='deterministic' is invalid"),
    ("output_empty", _train("--output_dir="), "--output_dir='' is invalid"),
    # Hyperparameter grids (issue 12): only numeric leaves, valid distinct values.
    ("grid_structural", _sweep("--grid.planner_config.horizon=5,10"),
     "planner_config.horizon is not a numeric hyperparameter leaf"),
    ("grid_sac_structural", _sweep("--algo=sac", "--grid.sac.batch_size=32,64"),
     "sac.batch_size is not a numeric hyperparameter leaf"),
    ("grid_unknown", _sweep("--grid.planner_config.alhpa=0.1"),
     "unknown config field 'planner_config.alhpa'"),
    ("grid_bad_value", _sweep("--grid.planner_config.alpha=0.1,2"), "alpha=2.0 is invalid"),
    ("grid_nan", _sweep("--grid.model.learning_rate=nan"), "learning_rate=nan is invalid"),
    ("grid_repeated", _sweep("--grid.planner_config.alpha=0.1,0.1"), "distinct values"),
    ("grid_empty", _sweep("--grid.planner_config.alpha="), "a comma-separated list"),
    ("grid_no_values", _sweep("--grid.planner_config.alpha"), "--grid.<field>=<v1>"),
    ("grid_and_config", _sweep(GRID_ALPHA, "--config.planner_config.alpha=0.3"),
     "either a value or a grid"),
    # Multi-process sweeps: complete, well-formed settings.
    ("distributed_incomplete", _sweep("--coordinator_address=localhost:1234"),
     "missing: --num_processes, --process_id"),
    ("distributed_bad_address", _sweep("--coordinator_address=nohost", "--num_processes=2",
                                       "--process_id=0"), "--coordinator_address='nohost'"),
    ("distributed_bad_id", _sweep("--coordinator_address=localhost:1", "--num_processes=2",
                                  "--process_id=2"), "--process_id=2 is invalid"),
]


# SAC's value expansion (issue 15): a known kind, a sane horizon, only where it applies.
CASES += [
    ("sac_bad_expansion", _train("--algo=sac", "--config.value_expansion=td5"),
     "Config.value_expansion='td5' is invalid; allowed: one of ['none', 'mve', 'steve']"),
    ("sac_negative_horizon", _train("--algo=sac", "--config.value_expansion=mve",
                                    "--config.expansion.horizon=-1"),
     "ExpansionConfig.horizon=-1 is invalid"),
    ("mbpo_value_expansion", _train("--algo=mbpo", "--config.value_expansion=steve"),
     "Config.value_expansion='steve' is invalid; allowed: none (MBPO"),
    ("pets_terminal_value_ilqr", _train("--config.planner=ilqr", "--config.terminal_value=True"),
     "Config.terminal_value=True is invalid; allowed: False with a planner that uses the"),
    ("pets_value_updates_zero", _train("--config.terminal_value=True",
                                       "--config.value.updates_per_episode=0"),
     "TerminalValueConfig.updates_per_episode=0 is invalid"),
    ("pets_policy_prior_negative", _train("--config.terminal_value=True",
                                          "--config.value.policy_prior=-1"),
     "TerminalValueConfig.policy_prior=-1 is invalid"),
    ("distill_no_teacher", _train("--algo=distill"), "Config.teacher_run='' is invalid"),
    ("distill_teacher_not_a_run", _train("--algo=distill", "--config.teacher_run=/nonexistent"),
     "/nonexistent"),
    ("mbppo_discrete_env", _train("--algo=mbppo", "--env=cartpole_discrete"),
     "env cartpole_discrete has discrete actions; mbppo needs continuous"),
    ("mbppo_bad_ratio", _train("--algo=mbppo", "--config.improvement_ratio=1.5"),
     "Config.improvement_ratio=1.5 is invalid"),
    ("mbppo_bad_dynamics", _train("--algo=mbppo", "--config.dynamics=exact"),
     "Config.dynamics='exact' is invalid"),
]


# Discrete-action envs and dyna_q (issue 17): the wrong kind of env is one line, not a traceback.
CASES += [
    ("dyna_q_continuous_env", _train("--algo=dyna_q"),
     "env point_mass has continuous actions; dyna_q needs a discrete"),
    ("dyna_q_not_tabular", _train("--algo=dyna_q", "--env=cartpole_discrete"),
     "no finite state set"),
    ("pets_discrete_env", _train("--env=maze/dyna"), "env maze/dyna has discrete actions"),
    ("dyna_q_alpha_zero", _train("--algo=dyna_q", "--env=maze/dyna", "--config.alpha=0"),
     "alpha=0.0 is invalid"),
    ("dyna_q_bad_layout", _train("--algo=dyna_q", "--env=maze/dyna", "--config.layout=S.X/..G"),
     "layout='S.X/..G' is invalid"),
    ("dyna_q_grid_structural", _sweep("--algo=dyna_q", "--env=maze/dyna",
                                      "--grid.planning_steps=5,50"),
     "planning_steps is not a numeric hyperparameter leaf"),
    ("mcts_continuous_env", _train("--algo=mcts", "--env=point_mass"),
     "env point_mass has continuous actions; mcts needs a discrete env"),
    ("mcts_bad_model", _train("--algo=mcts", "--env=cartpole_discrete", "--config.model=oracle"),
     "Config.model='oracle' is invalid"),
    ("mcts_bad_rollout_policy", _train("--algo=mcts", "--env=cartpole_discrete",
                                       "--config.search.rollout_policy=greedy"),
     "rollout_policy='greedy' is invalid"),
]



# PILCO (issue 16): an env without a TaskSpec and invalid fields are one line.
CASES += [
    ("pilco_unsupported_env", _train("--algo=pilco"),
     "pilco has no task description for env point_mass"),
    ("pilco_bad_policy", _train("--algo=pilco", "--env=cartpole_swingup", "--config.policy=mlp"),
     "Config.policy='mlp' is invalid"),
    ("pilco_bad_gp", _train("--algo=pilco", "--env=cartpole_swingup",
                            "--config.gp.max_points=1"), "GPConfig.max_points=1 is invalid"),
    ("pilco_bad_centre_spread", _train("--algo=pilco", "--env=cartpole_swingup",
                                       "--config.centre_spread=-1"),
     "Config.centre_spread=-1"),
    ("pilco_bad_precision", _train("--algo=pilco", "--env=cartpole_swingup",
                                   "--config.precision=float16"),
     "Config.precision='float16' is invalid"),
    ("pilco_bad_inducing", _train("--algo=pilco", "--env=cartpole_swingup",
                                  "--config.gp.inducing=kmeans"),
     "GPConfig.inducing='kmeans' is invalid"),
]

# Dreamer (issue 13): invalid fields and an action space it cannot use are one line.
CASES += [
    ("dreamer_train_every", _train("--algo=dreamer", "--env=cartpole_balance",
                                   "--config.train_every=3"), "Config.train_every=3 is invalid"),
    ("dreamer_actor_grad", _train("--algo=dreamer", "--env=cartpole_balance",
                                  "--config.actor_grad=pathwise"),
     "Config.actor_grad='pathwise' is invalid"),
    ("dreamer_dynamics_discrete", _train("--algo=dreamer", "--env=cartpole_discrete",
                                         "--config.actor_grad=dynamics"),
     "actor_grad='dynamics' is invalid for discrete actions"),
    ("dreamer_grid_structural", _sweep("--algo=dreamer", "--env=cartpole_balance",
                                       "--grid.horizon=5,10"),
     "horizon is not a numeric hyperparameter leaf"),
]

# BPTT / SVG and MAAC (issue 15): invalid fields, a true model the env cannot give, the wrong env.
CASES += [
    ("bptt_svg1_horizon", _train("--algo=bptt", "--config.value=svg1"),
     "Config.horizon=5 is invalid; allowed: 1 with value='svg1'"),
    ("bptt_true_dynamics_brax", _train("--algo=bptt", "--env=brax/inverted_pendulum",
                                       "--config.dynamics=true"),
     "true model: env='InvertedPendulum' is invalid"),
    ("bptt_grid_structural", _sweep("--algo=bptt", "--env=pendulum_swingup",
                                    "--grid.horizon=5,10"),
     "horizon is not a numeric hyperparameter leaf"),
    ("maac_horizon_zero", _train("--algo=maac", "--config.horizon=0"),
     "Config.horizon=0 is invalid"),
    ("maac_discrete_env", _train("--algo=maac", "--env=maze/dyna"),
     "env maze/dyna has discrete actions"),
]

# Guided policy search (issue 14 item 3): invalid fields, the wrong env, a structural grid field.
CASES += [
    ("gps_discrete_env", _train("--algo=gps", "--env=maze/dyna"),
     "env maze/dyna has discrete actions; gps needs continuous actions"),
    ("gps_kl_step_zero", _train("--algo=gps", "--env=cartpole_balance", "--config.kl_step=0"),
     "Config.kl_step=0.0 is invalid"),
    ("gps_estimated_reward", _train("--algo=gps", "--env=brax/halfcheetah"),
     "its reward cannot be computed exactly from observations"),
    ("gps_grid_structural", _sweep("--algo=gps", "--env=cartpole_balance",
                                   "--grid.num_rollouts=3,5"),
     "num_rollouts is not a numeric hyperparameter leaf"),
]

# PlaNet (issue 13 item 3): the wrong env kind, invalid fields, a structural grid field.
CASES += [
    ("planet_discrete_env", _train("--algo=planet", "--env=maze/dyna"),
     "env maze/dyna has discrete actions"),
    ("planet_noise_negative", _train("--algo=planet", "--config.exploration_noise=-1"),
     "exploration_noise=-1.0 is invalid"),
    ("planet_conv_without_pixels", _train("--algo=planet", "--config.model.encoder=conv"),
     "Config.model.encoder='conv' is invalid"),
    ("planet_grid_structural", _sweep("--algo=planet", "--grid.model.deter=16,32"),
     "model.deter is not a numeric hyperparameter leaf"),
]

# E2C (issue 14 item 4): a discrete env, an env without a goal image, invalid fields, a
# structural grid field.
CASES += [
    ("e2c_discrete_env", _train("--algo=e2c", "--env=maze/dyna"),
     "env maze/dyna has discrete actions; e2c needs continuous actions"),
    ("e2c_no_goal_image", _train("--algo=e2c", "--env=brax/halfcheetah"),
     "e2c needs a rendered goal image"),
    ("e2c_conv_image_size", _train("--algo=e2c", "--env=pendulum_swingup",
                                   "--config.image_size=24"),
     "Config.image_size=24 is invalid"),
    ("e2c_latent_zero", _train("--algo=e2c", "--env=pendulum_swingup",
                               "--config.latent_size=0"),
     "Config.latent_size=0 is invalid"),
    ("e2c_start_states", _train("--algo=e2c", "--env=pendulum_swingup",
                                "--config.start_states=upright"),
     "Config.start_states='upright' is invalid"),
    ("e2c_grid_structural", _sweep("--algo=e2c", "--env=pendulum_swingup",
                                   "--grid.latent_size=3,4"),
     "latent_size is not a numeric hyperparameter leaf"),
]


@pytest.mark.parametrize("setup, message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_clear_line_and_changes_nothing(finished, tmp_path, setup, message):
    module, args, keep = setup(finished, tmp_path)
    before = _files(keep) if keep else None
    proc = _cli(module, *args)
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    if keep:
        assert _files(keep) == before  # nothing a run wrote is lost or changed
    assert not os.path.exists(tmp_path / "new" / "config.json")  # no half-made run left


def test_evaluate_reports_and_writes_the_returns(finished, tmp_path):
    run = _copy(finished, tmp_path)
    proc = _cli("experiments.evaluate", f"--run_dir={run}", "--episodes=3", "--seed=5")
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = proc.stdout.strip().splitlines()[-1]
    assert "pets on point_mass after 4 episodes: 3 episodes, return mean=" in line
    result = json.loads(open(os.path.join(run, "evaluation.json")).read())
    assert len(result["returns"]) == 3 and result["seed"] == 5 and result["train_seed"] == 1
    assert min(result["returns"]) == result["return_min"] <= result["return_mean"]
    assert result["return_mean"] <= result["return_max"] == max(result["returns"])
    assert result["iteration"] == 4 and result["env_steps"] == _metrics(run)[-1]["env_steps"]
    # The first episode as a video (point_mass renders): a GIF with one frame per step + reset.
    from PIL import Image

    assert result["video"] == os.path.join(run, "evaluation.gif")
    with Image.open(result["video"]) as gif:
        assert gif.n_frames == 51 and gif.size == (128, 128)


def test_run_dir_files_and_tensorboard(finished):
    from mbjax.logging import read_tensorboard_scalars

    assert {"config.json", "metrics.jsonl", "curve.png", "checkpoints"} <= set(os.listdir(finished))
    records = _metrics(finished)
    scalars = read_tensorboard_scalars(finished)
    steps = [r["env_steps"] for r in records]
    for key in ("episode_return", "best_return", "episode", "wall_time_s"):
        assert [s for s, _ in scalars[key]] == steps
    assert [v for _, v in scalars["episode_return"]] == pytest.approx(
        [r["episode_return"] for r in records])


def test_the_forked_cli_equals_a_real_process(tmp_path):
    # The cases above run forked from cli_runner's server; one case run both ways must agree.
    args = ("experiments.train", *BASE, "--config.num_episodes=-1", f"--output_dir={tmp_path}")
    real = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    forked = _cli(*args)
    assert real.returncode == forked.returncode == 2
    assert real.stderr.strip().splitlines()[-1] == forked.stderr.strip().splitlines()[-1]
    assert real.stdout == forked.stdout


def test_build_failure_leaves_no_files(tmp_path):
    out = tmp_path / "new"
    proc = _cli("experiments.train", *BASE, "--config.propagation.num_particles=3",
                f"--output_dir={out}")
    assert proc.returncode == 2 and not out.exists()


def test_mbpo_console_lines_count_epochs(tmp_path):
    proc = _cli("experiments.train", "--algo=mbpo", "--env=point_mass", "--preset=test",
                "--config.num_epochs=2", f"--output_dir={tmp_path / 'm'}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = proc.stdout + proc.stderr
    assert "epoch=1  env_steps=" in console and "episode=" not in console


def test_ctrl_c_says_how_to_resume_and_resume_finishes_the_same_run(finished, tmp_path):
    out = tmp_path / "interrupted"
    proc = subprocess.Popen(
        [sys.executable, "-m", "experiments.train", *BASE, EPISODES, f"--output_dir={out}"],
        cwd=ROOT, env=dict(os.environ, PYTHONUNBUFFERED="1"), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )
    deadline = time.time() + 300
    while time.time() < deadline and not (out / "metrics.jsonl").exists():
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("interrupted: stopped after ") and "--resume" in last, last
    resumed = _cli("experiments.train", *BASE, EPISODES, f"--output_dir={out}", "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    strip = lambda rs: [{k: v for k, v in r.items() if k != "wall_time_s"} for r in rs]  # noqa
    assert strip(_metrics(out)) == strip(_metrics(finished))
