"""Optimizer hyperparameters as pytree leaves.

Optimizers are built with `optax.inject_hyperparams`, so their learning rates live in the
optimizer state as float32 arrays, not in closed-over constants: changing one never retraces a
jitted update, and a grid over them is a `vmap` over states.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp


def set_hyperparams(opt_state: Any, **values: Any) -> Any:
    """`opt_state` (an `optax.inject_hyperparams` state) with the named hyperparameters replaced
    by float32 `values` (scalars, traced values or a batch for a vmapped grid)."""
    hyper = dict(opt_state.hyperparams)
    unknown = sorted(set(values) - set(hyper))
    if unknown:
        raise ValueError(
            f"unknown optimizer hyperparameter(s) {unknown}; allowed: {sorted(hyper)}"
        )
    hyper.update({k: jnp.asarray(v, jnp.float32) for k, v in values.items()})
    return opt_state._replace(hyperparams=hyper)
