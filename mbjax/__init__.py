"""mbjax: compiled, batched model-based reinforcement learning in JAX.

Layers (imports only point downward):
  envs, models      -> know nothing of planners
  rollout           -> bridges models/envs to planners (objectives)
  planners          -> know a model only as an objective function
  agents            -> compose the rest (PETS, MBPO)
Heavy backends (brax, playground) are imported lazily so `import mbjax` stays fast.
"""

__version__ = "0.1.0"
