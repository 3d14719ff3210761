"""Host-side PETS driver in Brax's style: `train(...) -> (make_policy, params, metrics)`."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax

from mbjax.agents.pets.config import Config
from mbjax.agents.pets.train import PETS, make_pets, make_program
from mbjax.agents.program import run_host


def make_policy_factory(pets: PETS) -> Callable:
    """make_policy(model_state) -> (init_carry, policy): a carry-based MPC policy.

    init_carry(key) -> planner_state; policy(carry, obs [obs_dim], key) -> (carry, action [A],
    extras) plans from `obs`, returns the first action and the warm start shifted by one step.
    Both are pure and jittable; vmap them over envs for batched control.
    """

    def make_policy(model_state):
        def init_carry(key: jax.Array):
            return pets.planner.init(pets.env.action_size, key)

        def policy(carry, obs: jax.Array, key: jax.Array):
            actions, carry, info = pets.plan(model_state, carry, obs, key)
            return pets.planner.shift(carry, 1), actions[0], info

        return init_carry, policy

    return make_policy


def train(
    env: str,
    config: Config | None = None,
    *,
    seed: int = 0,
    progress_fn: Callable[[dict[str, Any]], None] | None = None,
    checkpoint_dir: str | None = None,
    resume: bool = False,
    on_resume: Callable[[list[dict[str, Any]]], None] | None = None,
) -> tuple[Callable, Any, list[dict[str, Any]]]:
    """Runs PETS on registry env `env` (overrides `config.env`), one compiled episode at a time.

    progress_fn(record) is called after each episode with its metrics record (episode, env_steps,
    episode_return, best_return, model losses, wall_time_s). With `checkpoint_dir`, the full state
    and the records so far are saved after every episode; `resume=True` continues from the newest
    checkpoint there (calling on_resume(records) with the restored records) and ends with exactly
    the metrics of an uninterrupted run. Raises FloatingPointError if training met NaN/Inf.
    Returns (make_policy, model_state, records).
    """
    config = dataclasses.replace(config or Config(), env=env)
    pets = make_pets(config)
    state, records = run_host(
        make_program(config, pets), seed, progress_fn=progress_fn,
        checkpoint_dir=checkpoint_dir, resume=resume, on_resume=on_resume,
    )
    return make_policy_factory(pets), state.model, records
