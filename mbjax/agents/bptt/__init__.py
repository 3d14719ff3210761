"""BPTT / SVG: a policy trained by the gradient of imagined returns through a model.

    from mbjax.agents import bptt
    config = bptt.preset("pendulum_swingup", "cpu")                  # SVG(inf), learned ensemble
    config = dataclasses.replace(config, dynamics="true")            # ... or the true physics
    config = dataclasses.replace(config, value="svg1", horizon=1)    # SVG(1): one step + V
    make_policy, final_state, records = bptt.train("pendulum_swingup", config, seed=0)

The objective (`mbjax.agents.pathwise`, shared with MAAC) is the mean discounted return of
`horizon` steps imagined with `mbjax.rollout.imagine` from real start states, differentiated
through the model and the (deterministic or reparameterised tanh-Gaussian) policy, with the
gradient clipped to a global norm (Heess et al. 2015, SVG(inf) / SVG(1)). One iteration is an
epoch; `bptt.ALGORITHM` is its record for the CLI and sweeps.
"""

from mbjax.agents import driver
from mbjax.agents.algorithm import Algorithm
from mbjax.agents.bptt.config import Config
from mbjax.agents.bptt.learner import Hyperparams, LearnerState, make_learner
from mbjax.agents.bptt.presets import PRESETS, preset
from mbjax.agents.bptt.train import (
    BPTT,
    BPTTState,
    EpochMetrics,
    make_bptt,
    make_policy,
    make_program,
)
from mbjax.agents.program import make_pure_train
from mbjax.grid import model_leaves
from mbjax.optim import set_hyperparams

_LEARNER_HPARAMS = ("discount", "max_grad_norm", "exploration_std", "tau")


def _set_learner(state, change):
    return state.replace(learner=change(state.learner))


def grid_leaves(config: Config) -> dict:
    """BPTT's grid fields: the Adam learning rates, discount / max_grad_norm / exploration_std /
    tau (leaves of `LearnerState.hparams`) and, with the ensemble, its learning rate."""
    leaves = {
        "policy_lr": lambda s, v: _set_learner(s, lambda ls: ls.replace(
            policy_opt_state=set_hyperparams(ls.policy_opt_state, learning_rate=v))),
    }
    if config.value == "svg1":
        leaves["value_lr"] = lambda s, v: _set_learner(s, lambda ls: ls.replace(
            value_opt_state=set_hyperparams(ls.value_opt_state, learning_rate=v)))
    for name in _LEARNER_HPARAMS:
        leaves[name] = lambda s, v, name=name: _set_learner(s, lambda ls: ls.replace(
            hparams=ls.hparams.replace(**{name: v})))
    if config.dynamics == "ensemble":
        leaves.update(model_leaves())
    return leaves


def make_train(config: Config):
    """A pure `train(key) -> (final_state, metrics)`; metrics leaves are [num_epochs]."""
    return make_pure_train(make_program(config))


ALGORITHM = Algorithm(
    name="bptt",
    config_class=Config,
    preset=preset,
    make_program=make_program,
    make_policy=make_policy,
    grid_leaves=grid_leaves,
    iteration_unit="epoch",
    description="BPTT / SVG(inf), SVG(1): pathwise policy gradients through a model "
                "(Heess et al. 2015)",
)

train = driver.bind(ALGORITHM)  # (env, config, *, seed, ...) -> (make_policy, state, records)

__all__ = [
    "ALGORITHM", "BPTT", "BPTTState", "Config", "EpochMetrics", "Hyperparams", "LearnerState",
    "PRESETS", "grid_leaves", "make_bptt", "make_learner", "make_policy", "make_program",
    "make_train", "preset", "train",
]
