"""Pathwise (reparameterised) policy learning through a dynamics model: the pieces BPTT/SVG
(`mbjax.agents.bptt`) and MAAC (`mbjax.agents.maac`) share.

    objective    `pathwise_return` (discounted, survival-weighted model return over H imagined
                 steps, optional entropy terms and a terminal value) and `imagined_objective`
                 (`mbjax.rollout.imagine` + `pathwise_return`, differentiable in the policy
                 parameters and the starts); `clip_gradients`
    true_model   `make_true_model(env)`: an own pure-JAX task's exact dynamics behind the
                 dynamics-model protocol, so the same code differentiates through the true env

This is one package rather than a module inside `bptt` because MAAC is not a variant of BPTT:
both are clients of the same objective, and neither should import the other's learner.
"""

from mbjax.agents.pathwise.objective import (
    PathwiseTerms,
    clip_gradients,
    imagined_objective,
    pathwise_return,
)
from mbjax.agents.pathwise.true_model import TrueModel, make_true_model, supports_true_model

__all__ = [
    "PathwiseTerms",
    "TrueModel",
    "clip_gradients",
    "imagined_objective",
    "make_true_model",
    "pathwise_return",
    "supports_true_model",
]
