"""Host-side MBPO driver in Brax's style: `train(...) -> (make_policy, params, metrics)`."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax

from mbjax.agents.mbpo.config import Config
from mbjax.agents.mbpo.train import MBPO, make_mbpo, make_program
from mbjax.agents.program import run_host


def make_policy_factory(mbpo: MBPO) -> Callable:
    """make_policy(actor_params, deterministic=True) -> (init_carry, policy).

    init_carry(key) -> () (SAC needs no carry); policy(carry, obs [..., obs_dim], key) ->
    (carry, action [..., A], extras {}) acts with the SAC policy (its mode when deterministic,
    else a sample). Pure and jittable; obs may carry a leading batch axis.
    """

    def make_policy(actor_params, deterministic: bool = True):
        def init_carry(key: jax.Array):
            del key
            return ()

        def policy(carry, obs: jax.Array, key: jax.Array):
            action = mbpo.sac.act(actor_params, obs, key, deterministic=deterministic)
            return carry, action, {}

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
    """Runs MBPO on registry env `env` (overrides `config.env`), one compiled epoch at a time.

    progress_fn(record) is called after each epoch with its record (episode = epoch, env_steps,
    episode_return = mean evaluation return, best_return, model and SAC losses, wall_time_s).
    With `checkpoint_dir` the full state (SAC, model, both buffers, env states, key) and the
    records are saved after every epoch; `resume=True` continues from the newest checkpoint there
    (calling on_resume(records) first) and ends with exactly the records of an uninterrupted run.
    Raises FloatingPointError if training met NaN/Inf. Returns (make_policy, actor_params,
    records).
    """
    config = dataclasses.replace(config or Config(), env=env)
    mbpo = make_mbpo(config)
    state, records = run_host(
        make_program(config, mbpo), seed, progress_fn=progress_fn,
        checkpoint_dir=checkpoint_dir, resume=resume, on_resume=on_resume,
    )
    return make_policy_factory(mbpo), state.sac.actor_params, records
