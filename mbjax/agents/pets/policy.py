"""Acting with a trained PETS run: MPC through the learned model."""

from __future__ import annotations

from typing import Any

import jax

from mbjax.agents.algorithm import PolicyFactory
from mbjax.agents.pets.config import Config
from mbjax.agents.pets.train import PETSState, make_pets


def make_policy(config: Config, final_state: PETSState, model: Any = None) -> PolicyFactory:
    """(init_carry, policy): a carry-based MPC policy on the model of `final_state`.

    model: the protocol model the run used when it was not `config.model`'s ensemble (what was
    passed to `make_pets(config, model=...)`).

    init_carry(key) -> planner_state; policy(carry, obs [obs_dim], key) -> (carry, action [A],
    extras) plans from `obs`, returns the first action and the warm start shifted by one step
    (it replans every step, whatever `config.replan_every`). Both are pure and jittable; vmap them
    over envs for batched control.
    """
    pets = make_pets(config, model=model)
    model_state = final_state.model

    def init_carry(key: jax.Array):
        return pets.planner.init(pets.env.action_size, key, final_state.planner_hparams)

    def policy(carry, obs: jax.Array, key: jax.Array):
        actions, carry, info = pets.plan(model_state, carry, obs, key, final_state.critic)
        return pets.planner.shift(carry, 1), actions[0], info

    return init_carry, policy
