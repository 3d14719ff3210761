"""Gaussian-process dynamics (PILCO, Deisenroth & Rasmussen 2011): one SE-ARD GP per output,
evidence-maximised hyperparameters, exact or FITC posteriors, exact prediction and closed-form
moment matching for Gaussian inputs.

    from mbjax.models.gp import GPConfig, make_gp
    model = make_gp(state_size=5, action_size=1, config=GPConfig(max_points=300))
    state = model.init(key); state, metrics = model.fit(state, buffer, key)   # the protocol
    moments = model.predict_moments(state, mean [S + A], cov [S + A, S + A])

Computations follow the input dtype. Tests run the float64 checks under
`jax.enable_x64(True)`; PILCO computes in float64 inside its steps (`mbjax.precision`); the
library never flips x64 for the process.
"""

from mbjax.models.gp.kernel import Hyper, fit_hyper, initial_hyper, neg_log_marginal, se_ard
from mbjax.models.gp.model import (
    GPConfig,
    GPModel,
    GPState,
    empty_state,
    fit_gp,
    make_gp,
    sample_or_mean,
)
from mbjax.models.gp.moments import Moments, moment_match, predict_moments
from mbjax.models.gp.posterior import Posterior, exact_posterior, fitc_posterior, predict

__all__ = [
    "GPConfig", "GPModel", "GPState", "Hyper", "Moments", "Posterior", "empty_state",
    "exact_posterior", "fit_gp", "fit_hyper", "fitc_posterior", "initial_hyper", "make_gp",
    "moment_match", "neg_log_marginal", "predict", "predict_moments", "sample_or_mean", "se_ard",
]
