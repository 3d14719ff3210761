"""The BNN dynamics model's configuration (`mbjax.models.bnn`)."""

from __future__ import annotations

import dataclasses

from mbjax import validation
from mbjax.models.config import ACTIVATIONS


@dataclasses.dataclass(frozen=True)
class BNNConfig:
    """A mean-field variational Bayesian MLP (Blundell et al. 2015).

    hidden_sizes / activation: the network; num_members: posterior weight samples exposed as
    the protocol's members (redrawn after every fit); prior_std: the N(0, prior_std^2) weight
    prior; init_std: every posterior std at initialization (small, so training starts near a
    deterministic net); learning_rate / batch_size / fit_steps: Adam steps per `fit` on uniform
    minibatches of the training rows; kl_warmup_steps: the KL weight rises linearly from 0 to
    `kl_weight` over the model's first gradient steps (kl_weight < 1: a tempered posterior,
    which large networks on little data need not to underfit); holdout_ratio: rows held out
    for `holdout_loss`; predict_reward: a reward output; min_logvar / max_logvar: soft bounds
    of the aleatoric log-variance (normalized units).
    """

    hidden_sizes: tuple[int, ...] = (200, 200, 200)
    activation: str = "swish"
    num_members: int = 5
    prior_std: float = 1.0
    init_std: float = 1e-3
    learning_rate: float = 1e-3
    batch_size: int = 256
    fit_steps: int = 1000
    kl_warmup_steps: int = 2000
    kl_weight: float = 1.0
    holdout_ratio: float = 0.1
    predict_reward: bool = False
    min_logvar: float = -10.0
    max_logvar: float = 0.5

    def __post_init__(self) -> None:
        validation.field_int_tuple(self, "hidden_sizes")
        validation.field_choice(self, "activation", ACTIVATIONS)
        for name in ("num_members", "batch_size", "fit_steps", "kl_warmup_steps"):
            validation.field_int(self, name)
        for name in ("prior_std", "init_std", "learning_rate", "kl_weight"):
            validation.field_float(self, name, 0.0, lo_open=True)
        validation.field_float(self, "holdout_ratio", 0.0, 0.5)
        validation.field_bool(self, "predict_reward")
        validation.field_float(self, "min_logvar")
        validation.field_float(self, "max_logvar")
        if not self.min_logvar < self.max_logvar:
            raise validation.field_error(self, "min_logvar",
                                         f"a number < max_logvar={self.max_logvar!r}")
