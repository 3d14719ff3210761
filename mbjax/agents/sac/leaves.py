"""SAC's numeric hyperparameters as grid leaves of a run whose state has a `sac` field (SAC
alone's `TrainState`, MBPO's state): `--grid.sac.<field>` in `experiments.sweep`.

Learning rates live in the optimizer states (optax.inject_hyperparams), discount / tau /
reward_scale / target_entropy in `SACState.hparams`, init_alpha is the initial `log_alpha`
(set before the first update, so the run equals one started with that value).
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from mbjax.agents.sac.learner import with_learning_rates
from mbjax.grid import Setter, model_leaves

_RATES = {"actor_lr": "actor", "critic_lr": "critic", "alpha_lr": "alpha"}
_HPARAMS = ("discount", "tau", "reward_scale", "target_entropy")


def _set_sac(state: Any, change: Any) -> Any:
    return state.replace(sac=change(state.sac))


def sac_leaves(prefix: str = "sac.") -> dict[str, Setter]:
    """{config path: setter(state, value) -> state} for the SAC learner's numeric fields."""
    leaves: dict[str, Setter] = {}
    for field, name in _RATES.items():
        leaves[prefix + field] = lambda state, v, name=name: _set_sac(
            state, lambda s: with_learning_rates(s, **{name: v}))
    for field in _HPARAMS:
        leaves[prefix + field] = lambda state, v, field=field: _set_sac(
            state, lambda s: s.replace(hparams=s.hparams.replace(**{field: v})))
    leaves[prefix + "init_alpha"] = lambda state, v: _set_sac(
        state, lambda s: s.replace(log_alpha=jnp.log(v)))
    return leaves


def grid_leaves(config: Any) -> dict[str, Setter]:
    """SAC's grid leaves (the `Algorithm.grid_leaves` of `--algo=sac`): the learner's numeric
    fields, and with value expansion the model's learning rate."""
    if getattr(config, "value_expansion", "none") == "none":
        return sac_leaves()
    return {**sac_leaves(), **model_leaves("expansion.model.")}


__all__ = ["grid_leaves", "sac_leaves"]
