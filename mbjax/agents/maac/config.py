"""MAAC configuration: MBPO's Config (loop, model, model data for the critics) plus the
pathwise actor's horizon and gradient clipping."""

from __future__ import annotations

import dataclasses

from mbjax import validation
from mbjax.agents import mbpo


@dataclasses.dataclass(frozen=True)
class Config(mbpo.Config):
    """MAAC (Clavera et al. 2020, "Model-Augmented Actor-Critic: Backpropagating through Paths").

    The run is MBPO's (`mbjax.agents.mbpo.Config`: real env steps, the ensemble refitted every
    `model_train_every` transitions, `rollout_batch_size` branched model rollouts into a model
    buffer, SAC critics and temperature trained on batches mixing real (`real_ratio`) and model
    data). What changes is the actor: instead of SAC's one-step loss it ascends the pathwise
    objective of `horizon` imagined steps from `sac.batch_size` real start states, a uniformly
    drawn elite per row and step, plus the soft Q of the policy's action at the end:

        J = E[ sum_{t<H} gamma^t (s r_t - alpha log pi(a_t|s_t))
               + gamma^H (min_c Q_c(s_H, a_H) - alpha log pi(a_H|s_H)) ]

    (`mbjax.agents.pathwise`), its gradient clipped to global norm `max_grad_norm`.
    """

    horizon: int = 3
    max_grad_norm: float = 10.0

    def __post_init__(self) -> None:
        super().__post_init__()
        validation.field_int(self, "horizon")
        validation.field_float(self, "max_grad_norm", 0.0, lo_open=True)
