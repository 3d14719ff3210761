"""A learner that computes in float64 while its state stays float32.

mbjax never flips `jax_enable_x64` for the process: every other learner, the replay buffer and
the checkpoints are float32. A learner whose maths needs double precision (PILCO: in float32
the moment-matched covariances of its long-term prediction go indefinite within a few steps)
builds its `Program` with `x64=True`, so the runners trace, compile and execute it under
`jax.enable_x64(True)`, and wraps its init and step with `float32_state` / `float64_step`:

- `float64_step(step)`: float leaves of the state cast to float64 on the way in; on the way out
  floats back to float32 and integers to int32 (`float32_state`);
- `float32_state(init)`: the same cast of the initial state, so checkpoints, resumes and the
  run state have the dtypes of a float32 learner whatever the context.

The context must cover lowering as well as tracing (jnp functions that are jits of their own,
e.g. `argmax`, lower with the config of the outermost call), so it cannot be entered inside a
traced step: `float64_step` raises if it is traced without x64.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp


def _cast(float_dtype: Any, int_dtype: Any) -> Callable[[Any], Any]:
    def cast(x: Any) -> Any:
        x = x if hasattr(x, "dtype") else jnp.asarray(x)
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            return x
        if jnp.issubdtype(x.dtype, jnp.floating):
            return x.astype(float_dtype)
        if jnp.issubdtype(x.dtype, jnp.signedinteger):
            return x.astype(int_dtype)
        return x  # bool and unsigned (PRNG key data) unchanged

    return cast


def float32_state(fn: Callable[..., Any]) -> Callable[..., Any]:
    """fn with its float results cast to float32 and integer results to int32."""

    def wrapped(*args: Any) -> Any:
        return jax.tree.map(_cast(jnp.float32, jnp.int32), fn(*args))

    return wrapped


def float64_step(fn: Callable[..., Any]) -> Callable[..., Any]:
    """fn computed in float64 (see the module docstring); must be traced under x64."""

    def wrapped(*args: Any) -> Any:
        if not jax.config.jax_enable_x64:
            raise RuntimeError(
                "this step computes in float64: trace and run it under jax.enable_x64(True) "
                "(the Program runners do so for a Program with x64=True)")
        return float32_state(fn)(*jax.tree.map(_cast(jnp.float64, jnp.int64), args))

    return wrapped
