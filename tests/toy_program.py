"""A tiny Program for the runner tests: a counter, a running sum and a PRNG key.

Each iteration draws u ~ U(0, 1) from the state's key; below `nan_below` the increment is NaN
(the iteration reports `nonfinite`), so which iterations fail depends on the key, and a rolled-back
iteration with an advanced key tries a different u.
"""

import jax
import jax.numpy as jnp

from mbjax.agents.program import Program, Segment


def toy_program(num_iterations: int = 6, nan_below: float = 0.0, on_nonfinite: str = "raise",
                size: int = 3) -> Program:
    def init(key):
        return {"x": jnp.zeros(size), "i": jnp.int32(0), "key": key}

    def step(state):
        key, sub = jax.random.split(state["key"])
        u = jax.random.uniform(sub)
        inc = jnp.where(u < nan_below, jnp.nan, u)
        new = {"x": state["x"] + inc, "i": state["i"] + 1, "key": key}
        metrics = {"nonfinite": ~jnp.isfinite(inc), "episode_return": jnp.sum(new["x"]),
                   "env_steps": new["i"]}
        return new, metrics

    def to_record(i, m):
        return {"iteration": i, "env_steps": int(m["env_steps"]),
                "episode_return": float(m["episode_return"])}

    first = min(2, num_iterations)
    return Program(init, (Segment(step, first), Segment(step, num_iterations - first)),
                   to_record, on_nonfinite=on_nonfinite)


def without_wall_time(records):
    """Records minus their wall time (the only field that differs between equal runs)."""
    return [{k: v for k, v in r.items() if k != "wall_time_s"} for r in records]
