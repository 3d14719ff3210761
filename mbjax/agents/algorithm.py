"""The explicit surface of a learner: one `Algorithm` record per agent package.

The CLI, sweeps, benchmarks and the host driver use only this record, never module attributes:

    from mbjax import agents
    algo = agents.get("pets")                      # the record exported as pets.ALGORITHM
    config = algo.preset("cartpole_swingup", "cpu")
    program = algo.make_program(config)            # a Program: how every learner runs
    init_carry, policy = algo.make_policy(config, final_state)

Adding an algorithm means writing `mbjax/agents/<name>/` whose `__init__` exports
`ALGORITHM = Algorithm(...)`, and one line in `mbjax.agents.ALGORITHMS`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

# (init_carry(key) -> carry, policy(carry, obs [obs_dim], key) -> (carry, action [A], extras))
PolicyFactory = tuple[Callable[[Any], Any], Callable[..., tuple[Any, Any, dict]]]


@dataclasses.dataclass(frozen=True)
class Algorithm:
    """What the CLI, sweeps and benchmarks need to know about a learner.

    name: the `--algo` name. config_class: its frozen-dataclass Config.
    preset(env, preset_name) -> Config: one of `preset_names` (generic settings for envs without
      a dedicated entry; ValueError naming the allowed presets otherwise).
    make_program(config) -> Program (`mbjax.agents.program`): init + segments of compiled
      iterations; `Program.num_iterations` is the length of the progress bar.
    make_policy(config, final_state) -> (init_carry, policy): act with the final state of a run
      (pure and jittable; see `PolicyFactory`).
    grid_leaves(config) -> {config path: setter(state, value) -> state}: the numeric config
      fields that are leaves of the run state, which a hyperparameter grid (`mbjax.grid`,
      `experiments.sweep --grid.<path>=...`) sets per run in one program; None: no grid.
    make_env(config) -> env: the env a run of `config` acts in (evaluation, videos); None: the
      registry env of the config's `env`, `episode_length` and `action_repeat` fields.
    iteration_unit: what one iteration is ("episode", "epoch"), for progress and summaries.
    description: one line for `--help` and the README.
    preset_names: the presets `preset` knows.
    """

    name: str
    config_class: type
    preset: Callable[[str, str], Any]
    make_program: Callable[[Any], Any]
    make_policy: Callable[[Any, Any], PolicyFactory]
    grid_leaves: Callable[[Any], dict[str, Callable[[Any, Any], Any]]] | None = None
    make_env: Callable[[Any], Any] | None = None
    iteration_unit: str = "episode"
    description: str = ""
    preset_names: tuple[str, ...] = ("paper", "cpu", "test")

    def env_of(self, config: Any) -> Any:
        """The env a run of `config` acts in (`make_env`, or the registry's default)."""
        if self.make_env is not None:
            return self.make_env(config)
        from mbjax import envs

        return envs.make(config.env, episode_length=config.episode_length,
                         action_repeat=config.action_repeat)

    @property
    def iteration_units(self) -> str:
        """The plural of `iteration_unit` ("episodes", "epochs"), for summaries."""
        return self.iteration_unit + "s"
