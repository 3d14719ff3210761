"""The algorithm registry, the `Algorithm` records and the one host driver."""

import dataclasses
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest

from mbjax import agents, configs
from mbjax.agents import driver
from mbjax.agents.algorithm import Algorithm
from mbjax.agents.program import Program, Segment


@pytest.mark.parametrize("name", agents.names())
def test_every_registered_algorithm_has_a_record_whose_presets_are_valid(name):
    algo = agents.get(name)
    assert isinstance(algo, Algorithm) and algo.name == name and algo.description
    assert algo.iteration_unit in ("episode", "epoch", "iteration")
    # discrete-action learners need a discrete env (dyna_q: a tabular one)
    # (pilco: a task it has moment descriptions for)
    env = {"dyna_q": "maze/dyna", "mcts": "cartpole_discrete",
           "pilco": "cartpole_swingup"}.get(name, "point_mass")
    for preset in algo.preset_names:
        config = algo.preset(env, preset)  # validated on construction
        assert isinstance(config, algo.config_class) and config.env == env
    with pytest.raises(ValueError, match="preset 'huge'.*allowed"):
        algo.preset(env, "huge")
    if name == "distill":  # it distills a trained run's policy: without one, a clear error
        with pytest.raises(ValueError, match="teacher_run='' is invalid"):
            algo.make_program(algo.preset(env, "test"))
        return
    # Building the program compiles nothing; its length is what the CLI's progress bar shows.
    assert algo.make_program(algo.preset(env, "test")).num_iterations >= 1


def test_unknown_algorithm_names_the_allowed_ones():
    with pytest.raises(ValueError, match="unknown algorithm 'ppo'; allowed: pets, mbpo"):
        agents.get("ppo")
    with pytest.raises(ValueError, match="unknown algorithm"):
        driver.train("ppo", "point_mass")


def test_importing_the_registry_loads_no_learner():
    code = ("import sys, mbjax.agents as a; a.names(); "
            "assert 'jax' not in sys.modules and 'mbjax.agents.pets' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_pets_planner_switch_resets_the_planner_config():
    pets = agents.get("pets")
    config = pets.preset("point_mass", "cpu")  # iCEM with horizon 25
    cem = configs.apply_overrides(config, {"planner_config.horizon": "10", "planner": "cem"})
    assert type(cem.planner_config).__name__ == "CEMConfig" and cem.planner_config.horizon == 10
    default_population = pets.config_class(planner="cem").planner_config.population
    assert cem.planner_config.population == default_population
    # The same planner keeps the preset's settings.
    same = configs.apply_overrides(config, {"planner": config.planner})
    assert same.planner_config == config.planner_config
    with pytest.raises(ValueError, match="planner='cmaes' is invalid; allowed"):
        configs.apply_overrides(config, {"planner": "cmaes"})


# ------------------------------------------------------------------ the driver on a toy record


@dataclasses.dataclass(frozen=True)
class _ToyConfig:
    env: str = "nowhere"
    num_iterations: int = 3


def _toy_program(config: _ToyConfig) -> Program:
    def init(key):
        return {"x": jnp.zeros(()), "key": key}

    def step(state):
        x = state["x"] + 1.0
        metrics = {"env_steps": 10 * x, "episode_return": -x, "nonfinite": jnp.isnan(x)}
        return {"x": x, "key": state["key"]}, metrics

    def to_record(i, m):
        return {"episode": i, "env_steps": int(m["env_steps"]),
                "episode_return": float(m["episode_return"])}

    return Program(init, (Segment(step, config.num_iterations),), to_record)


def _toy_policy(config, final_state, scale=1.0):
    return (lambda key: (),
            lambda carry, obs, key: (carry, obs * final_state["x"] * scale, {"env": config.env}))


_TOY = Algorithm(name="toy", config_class=_ToyConfig, preset=lambda env, name: _ToyConfig(env),
                 make_program=_toy_program, make_policy=_toy_policy, description="a counter")


class _Interrupt(Exception):
    pass


def test_driver_runs_a_record_with_progress_checkpoints_and_resume(tmp_path):
    seen = []
    make_policy, state, records = driver.train(_TOY, "somewhere", progress_fn=seen.append)
    assert float(state["x"]) == 3 and seen == records
    assert [r["episode_return"] for r in records] == [-1.0, -2.0, -3.0]
    assert [r["best_return"] for r in records] == [-1.0, -1.0, -1.0]
    # make_policy is the record's make_policy bound to the run's config (env overridden).
    init_carry, policy = make_policy(state, scale=2.0)
    _, action, extras = policy(init_carry(None), jnp.ones(2), None)
    np.testing.assert_allclose(action, [6.0, 6.0])
    assert extras == {"env": "somewhere"}

    def stop_after_two(record):
        if record["episode"] == 1:
            raise _Interrupt

    ck = str(tmp_path / "ck")
    with pytest.raises(_Interrupt):
        driver.train(_TOY, "somewhere", checkpoint_dir=ck, progress_fn=stop_after_two)
    restored = []
    _, state, resumed = driver.train(_TOY, "somewhere", _ToyConfig(), checkpoint_dir=ck,
                                     resume=True, on_resume=restored.extend)
    assert len(restored) == 2 and float(state["x"]) == 3
    strip = lambda rs: [{k: v for k, v in r.items() if k != "wall_time_s"} for r in rs]
    assert strip(resumed) == strip(records)
