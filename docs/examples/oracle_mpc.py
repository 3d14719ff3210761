"""Worked example: a new algorithm as a module plus one registry line (docs/architecture.md).

Ground-truth MPC: plan every step with the true environment as the model (`make_env_problem`),
act, repeat. No learning: it is the upper bound a model-based learner can reach with the same
planner, which is why it is worth having as an algorithm. It reuses the layers below it (envs,
`acting`, `rollout`, planners) and runs through `Program`, so the CLI, sweeps, checkpoints and
`--resume` work without code of its own. To ship it, copy it to `mbjax/agents/oracle_mpc/` and
add `"oracle_mpc": "mbjax.agents.oracle_mpc"` to `mbjax.agents.ALGORITHMS`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from mbjax import acting, configs, validation
from mbjax import envs as mbjax_envs
from mbjax.agents.algorithm import Algorithm
from mbjax.agents.program import Program, Segment
from mbjax.planners import PLANNERS, make_planner, planner_config
from mbjax.rollout import make_env_problem


@dataclasses.dataclass(frozen=True)
class Config:
    """env / episode_length: the task; num_episodes: MPC episodes to run; planner and its config
    (switching `planner` resets `planner_config` to that planner's defaults)."""

    env: str = "point_mass"
    episode_length: int | None = None
    num_episodes: int = 3
    planner: str = configs.selector("planner_config", default_for=planner_config, default="cem")
    planner_config: Any = None

    def __post_init__(self) -> None:
        validation.field_optional_int(self, "episode_length")
        validation.field_int(self, "num_episodes")
        validation.field_choice(self, "planner", sorted(PLANNERS))
        object.__setattr__(self, "planner_config", planner_config(self.planner,
                                                                  self.planner_config))


# preset name -> (planning horizon, CEM population)
PRESETS = {"paper": (25, 400), "cpu": (15, 100), "test": (8, 32)}


def preset(env: str, name: str) -> Config:
    """CEM at the size of `name` (PETS' 400 x 25 for "paper")."""
    if name not in PRESETS:
        raise validation.invalid("preset", name, f"one of {list(PRESETS)}")
    horizon, population = PRESETS[name]
    cfg = planner_config("cem", None, horizon=horizon, population=population,
                         num_elites=max(4, population // 10))
    return Config(env=env, planner="cem", planner_config=cfg)


class OracleState(NamedTuple):
    key: jax.Array
    episode: jax.Array
    env_steps: jax.Array


def make_program(config: Config) -> Program:
    env = mbjax_envs.make(config.env, episode_length=config.episode_length)
    planner = make_planner(config.planner, config.planner_config)
    problem_for = make_env_problem(env)
    num_steps = env.episode_length

    def act(carry, obs, key, env_state):
        actions, plan_state, _ = planner.plan(carry, problem_for(env_state), obs, key)
        return planner.shift(plan_state, 1), actions[0]

    def episode(state: OracleState):
        key, k_reset, k_plan, k_steps = jax.random.split(state.key, 4)

        def one(carry, k):
            ep, plan_state = carry
            plan_state, action = act(plan_state, ep.state.obs, k, ep.state)
            ep, _ = acting.episode_step(env, ep, action)
            return (ep, plan_state), None

        carry = (acting.start_episode(env, k_reset), planner.init(env.action_size, k_plan))
        (ep, _), _ = jax.lax.scan(one, carry, jax.random.split(k_steps, num_steps))
        steps = state.env_steps + ep.length.astype(jnp.int32)
        metrics = {"env_steps": steps, "episode_return": ep.episode_return,
                   "nonfinite": ~jnp.isfinite(ep.episode_return)}
        return OracleState(key, state.episode + 1, steps), metrics

    def init(key: jax.Array) -> OracleState:
        return OracleState(key, jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))

    def to_record(i: int, m: dict) -> dict:
        return {"episode": i, "env_steps": int(m["env_steps"]),
                "episode_return": float(m["episode_return"])}

    return Program(init, (Segment(episode, config.num_episodes),), to_record)


def make_policy(config: Config, final_state: OracleState):
    """(init_carry, policy). The true model needs the simulator's state, not just its
    observation, so this policy's `obs` argument is the env State itself."""
    env = mbjax_envs.make(config.env, episode_length=config.episode_length)
    planner = make_planner(config.planner, config.planner_config)
    problem_for = make_env_problem(env)

    def init_carry(key):
        return planner.init(env.action_size, key)

    def policy(carry, env_state, key):
        actions, carry, info = planner.plan(carry, problem_for(env_state), env_state.obs, key)
        return planner.shift(carry, 1), actions[0], info

    return init_carry, policy


ALGORITHM = Algorithm(
    name="oracle_mpc", config_class=Config, preset=preset, make_program=make_program,
    make_policy=make_policy, iteration_unit="episode",
    description="MPC with the true environment as the model (an upper bound, no learning)",
)
