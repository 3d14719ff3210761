"""Soft actor-critic: a reusable learner (`make_sac`) and a small pure training loop.

MBPO composes `make_sac(...).update_many` with a sampler over model rollouts; `make_train_sac`
trains SAC alone on real environments (for tests and baselines).
"""

from mbjax.agents.sac.config import SACConfig
from mbjax.agents.sac.learner import (
    SAC,
    ActorParams,
    SACHyperparams,
    SACState,
    make_sac,
)
from mbjax.agents.sac.losses import SACNetworks
from mbjax.agents.sac.normalizer import RunningMeanStd
from mbjax.agents.sac.train import SACTrainState, TrainSAC, make_train_sac

__all__ = [
    "SAC",
    "ActorParams",
    "RunningMeanStd",
    "SACConfig",
    "SACHyperparams",
    "SACNetworks",
    "SACState",
    "SACTrainState",
    "TrainSAC",
    "make_sac",
    "make_train_sac",
]
