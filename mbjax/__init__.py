"""mbjax: compiled, batched model-based reinforcement learning in JAX.

Layers (imports only point downward):
  envs, models      -> know nothing of planners
  rollout           -> bridges models/envs to planners (objectives)
  planners          -> know a model only as an objective function
  agents            -> compose the rest (PETS, MBPO, SAC)
  runs              -> run directories; `mbjax.load_policy(run_dir)` gives a trained policy
Heavy backends (brax, playground) are imported lazily so `import mbjax` stays fast.
"""

__version__ = "0.1.0"

__all__ = ["load_policy"]


def __getattr__(name: str):
    """`mbjax.load_policy` without importing JAX at `import mbjax` (see `mbjax.runs`)."""
    if name == "load_policy":
        from mbjax.runs import load_policy

        return load_policy
    raise AttributeError(f"module 'mbjax' has no attribute {name!r}")
