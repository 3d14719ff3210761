"""Bayesian neural network dynamics (mean-field variational, Bayes by backprop) whose posterior
weight samples are the model protocol's members, so PETS and MBPO use it like an ensemble:

    from mbjax.models.bnn import BNNConfig, make_bnn
    model = make_bnn(BNNConfig(), obs_size, action_size)
    pets.make_program(config, pets.make_pets(config, model=model))
"""

from mbjax.models.bnn.config import BNNConfig
from mbjax.models.bnn.model import BNN, BNNState, bounded_logvar, make_bnn, set_learning_rate

__all__ = ["BNN", "BNNConfig", "BNNState", "bounded_logvar", "make_bnn", "set_learning_rate"]
