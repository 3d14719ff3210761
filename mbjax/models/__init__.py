"""Dynamics models: the model protocol (`base`) and its implementations: stacked-member MLP
ensembles (deterministic or Gaussian) with normalizers and a compiled fit."""

from mbjax.models.base import DynamicsModel, FitMetrics, check_model, check_model_matches
from mbjax.models.config import EnsembleConfig
from mbjax.models.ensemble import (
    Ensemble,
    learner_model,
    make_ensemble,
    select_members,
    set_learning_rate,
)
from mbjax.models.normalizer import Normalizer, denormalize, fit_normalizer, normalize
from mbjax.models.state import ModelNormalizer, ModelState, ModelStep, Prediction, RawPrediction
from mbjax.models.training import all_finite, finite_rows, raise_if_nonfinite

__all__ = [
    "DynamicsModel",
    "all_finite",
    "finite_rows",
    "FitMetrics",
    "check_model",
    "check_model_matches",
    "learner_model",
    "set_learning_rate",
    "Ensemble",
    "EnsembleConfig",
    "ModelNormalizer",
    "ModelState",
    "ModelStep",
    "Normalizer",
    "Prediction",
    "RawPrediction",
    "denormalize",
    "fit_normalizer",
    "make_ensemble",
    "normalize",
    "raise_if_nonfinite",
    "select_members",
]
