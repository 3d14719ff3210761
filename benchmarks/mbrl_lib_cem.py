"""Times mbrl-lib's PETS CEM agent (PyPI `mbrl` 0.2.0, CPU torch); runs INSIDE .mbrl_venv/.

    .mbrl_venv/bin/python benchmarks/mbrl_lib_cem.py '{"obs_size": 4, "action_size": 1, ...}'

Prints one JSON object on the last line of stdout. Not part of mbjax: it imports only torch,
omegaconf, hydra and mbrl (installed by benchmarks/setup_mbrl_lib.sh), and is launched as a
subprocess by `python -m benchmarks.planner_throughput --compare-mbrl-lib`.

The model and agent are built the way mbrl-lib's PETS example does (mbrl/algorithms/pets.py):
`mbrl.util.common.create_one_dim_tr_model` (a GaussianMLP ensemble wrapped in a
`OneDTransitionRewardModel`, normalized inputs, delta targets, known reward), a `ModelEnv`, and
`mbrl.planning.create_trajectory_optim_agent_for_model` with a `TrajectoryOptimizerAgent` over a
`CEMOptimizer`. Weights are untrained (the timing does not depend on them). `_recursive_=False`
is set on the nested configs because hydra-core 1.3 instantiates nested `_target_`s eagerly
(mbrl 0.2.0 was written for hydra 1.0, whose pin does not import on Python 3.11).

Config keys (all required unless noted): obs_size, action_size, ensemble_size, hidden (list of
equal widths: mbrl-lib's GaussianMLP has one hid_size), population, horizon, iterations,
elite_ratio, particles, propagation ("ts1" -> mbrl-lib "random_model" (re-drawn every step),
"tsinf" -> "fixed_model", "expectation"), reward ("cartpole" | "halfcheetah"), alpha (0.1),
calls (>= 1 timed act() calls, default 3), warmup (an untimed first call, default true),
min_time_s (default 0), seed (default 0),
threads (torch intra-op threads; default: torch's own choice).
"""

from __future__ import annotations

import json
import statistics
import sys
import time

PROPAGATION = {"ts1": "random_model", "tsinf": "fixed_model", "expectation": "expectation"}


def _box_env(obs_size: int, action_size: int):
    """A stand-in env with the right spaces: ModelEnv and the agent only read the spaces."""
    import gymnasium as gym
    import numpy as np

    class _Spaces(gym.Env):
        def __init__(self):
            self.observation_space = gym.spaces.Box(-np.inf, np.inf, (obs_size,), np.float32)
            self.action_space = gym.spaces.Box(-1.0, 1.0, (action_size,), np.float32)

    return _Spaces()


def main(cfg: dict) -> dict:
    t_import = time.perf_counter()
    import mbrl
    import mbrl.env.reward_fns as reward_fns
    import mbrl.env.termination_fns as termination_fns
    import mbrl.models
    import mbrl.planning
    import mbrl.util.common
    import numpy as np
    import omegaconf
    import torch

    import_s = time.perf_counter() - t_import
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg["threads"]))
    torch.manual_seed(cfg.get("seed", 0))
    obs_size, action_size = int(cfg["obs_size"]), int(cfg["action_size"])

    from mbrl_lib_common import ensemble_conf

    t_setup = time.perf_counter()
    conf = ensemble_conf(cfg, PROPAGATION[cfg["propagation"]])
    conf = omegaconf.OmegaConf.create(
        {
            **conf,
            "algorithm": {
                **conf["algorithm"],
                "num_particles": int(cfg["particles"]),
                "agent": {
                    "_target_": "mbrl.planning.TrajectoryOptimizerAgent",
                    "_recursive_": False,
                    "action_lb": [-1.0] * action_size,
                    "action_ub": [1.0] * action_size,
                    "planning_horizon": int(cfg["horizon"]),
                    "replan_freq": 1,
                    "verbose": False,
                    "optimizer_cfg": {
                        "_target_": "mbrl.planning.CEMOptimizer",
                        "num_iterations": int(cfg["iterations"]),
                        "elite_ratio": float(cfg["elite_ratio"]),
                        "population_size": int(cfg["population"]),
                        "alpha": float(cfg.get("alpha", 0.1)),
                        "lower_bound": "???",
                        "upper_bound": "???",
                        "return_mean_elites": False,
                        "device": "cpu",
                        "clipped_normal": False,
                    },
                },
            },
            "overrides": {"num_elites": None},
        }
    )
    env = _box_env(obs_size, action_size)
    model = mbrl.util.common.create_one_dim_tr_model(conf, (obs_size,), (action_size,))
    reward_fn = getattr(reward_fns, cfg["reward"])
    term_fn = termination_fns.cartpole if cfg["reward"] == "cartpole" else (
        termination_fns.no_termination
    )
    generator = torch.Generator(device="cpu")
    generator.manual_seed(cfg.get("seed", 0))
    model_env = mbrl.models.ModelEnv(env, model, term_fn, reward_fn, generator=generator)
    agent = mbrl.planning.create_trajectory_optim_agent_for_model(
        model_env, conf.algorithm.agent, num_particles=conf.algorithm.num_particles
    )
    agent.reset()
    setup_s = time.perf_counter() - t_setup

    rng = np.random.default_rng(cfg.get("seed", 0))
    obs = (0.05 * rng.standard_normal(obs_size)).astype(np.float32)
    first_call_s = None
    if cfg.get("warmup", True):
        t0 = time.perf_counter()
        agent.act(obs)  # first call: allocator warm-up, lazy init
        first_call_s = time.perf_counter() - t0
    times = []
    start, cpu0 = time.perf_counter(), time.process_time()
    calls, min_time = int(cfg.get("calls", 3)), float(cfg.get("min_time_s", 0.0))
    while len(times) < calls or time.perf_counter() - start < min_time:
        t = time.perf_counter()
        agent.act(obs)  # replans every call (replan_freq=1), as PETS does
        times.append(time.perf_counter() - t)
    cpu = time.process_time() - cpu0
    sec = statistics.median(times)
    return {
        "mbrl_version": mbrl.__version__,
        "torch_version": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "propagation_method": PROPAGATION[cfg["propagation"]],
        "elite_num": int(agent.optimizer.optimizer.elite_num),
        "import_s": import_s,
        "setup_s": setup_s,
        "first_call_s": first_call_s,
        "seconds_per_plan": sec,
        "seconds_per_plan_min": min(times),
        "calls": len(times),
        "cpu_seconds_per_plan": cpu / len(times),
        "plans_per_s": 1.0 / sec,
    }


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: mbrl_lib_cem.py '<json config>'")
    result = main(json.loads(sys.argv[1]))
    print(json.dumps(result))
