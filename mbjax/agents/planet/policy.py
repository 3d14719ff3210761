"""Acting with a trained PlaNet run: filter the observation into the RSSM latent, plan there."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mbjax.agents.algorithm import PolicyFactory
from mbjax.agents.planet.config import Config
from mbjax.agents.planet.train import PlaNetState, make_planet


def make_policy(config: Config, final_state: PlaNetState) -> PolicyFactory:
    """(init_carry, policy) on the RSSM of `final_state`, without exploration noise.

    init_carry(key) -> AgentCarry (zero latent, planner warm start from the run's planner
    hyperparameters); policy(carry, obs [*obs_shape], key) -> (carry, action [A], info) filters
    obs (the reset's, then each step's) into the latent and returns the first planned action.
    Pure and jittable; vmap over envs for batched control.
    """
    planet = make_planet(config)
    model_state = final_state.model

    def init_carry(key: jax.Array):
        return planet.start(key, final_state.planner_hparams)

    def policy(carry, obs: jax.Array, key: jax.Array):
        return planet.act(model_state, carry, obs, key, jnp.zeros((), jnp.float32))

    return init_carry, policy
