"""Static configuration of an ensemble dynamics model and its training."""

from __future__ import annotations

import dataclasses

from mbjax import validation

ACTIVATIONS = ("swish", "silu", "relu", "tanh", "elu", "gelu", "leaky_relu")
HOLDOUT_METRICS = ("mse", "nll")


@dataclasses.dataclass(frozen=True)
class EnsembleConfig:
    """An ensemble of E MLPs predicting normalized state deltas (PETS/MBPO style).

    Structure (static): ensemble_size E, hidden_sizes, activation, probabilistic (Gaussian head
    with learned soft-bounded log-variance, trained by NLL) or deterministic (MSE), optional
    reward head (regressed jointly with the delta) and termination head (a logit, trained by
    binary cross-entropy).

    Training: Adam(learning_rate) on the summed per-member losses plus per-layer L2 weight decay
    (`weight_decays`: one float for every layer, or one per layer incl. the output layer, PETS used
    e.g. (2.5e-5, 5e-5, 7.5e-5, 7.5e-5, 1e-4)); `holdout_ratio` of the valid data (at most
    `max_holdout` items) is held out; up to `max_epochs` epochs of minibatches of `batch_size`;
    early stopping when no member improved its holdout metric by a relative
    `improvement_threshold` for `patience` epochs (None: run all epochs, still keep the best
    snapshot per member); `num_elites` best members by holdout metric (None: all members);
    `bootstrap` resamples each member's training set with replacement.

    `nll_beta` (beta-NLL, Seitzer et al. 2022): each element's Gaussian NLL is scaled by a
    constant (stop-gradient) var**beta. 0 is the plain NLL of PETS/MBPO; 1 gives the mean the
    gradient of an MSE. With plain NLL a member can "explain" a badly fitted element by raising
    its variance, which shrinks that element's mean gradient by exp(-logvar) against well-fitted
    elements (up to ~e^8 apart): after a warm start on data with a wider support (e.g. a learned
    reward whose scale grows 80x) the new region stays unfitted. 1 fixes that (0.5 only partly);
    recommended with a learned reward. The reported nll metrics stay the plain NLL.
    """

    ensemble_size: int = 5
    hidden_sizes: tuple[int, ...] = (200, 200, 200, 200)
    activation: str = "swish"
    probabilistic: bool = True
    predict_reward: bool = False
    predict_termination: bool = False
    num_elites: int | None = None
    learning_rate: float = 1e-3
    weight_decays: float | tuple[float, ...] = 0.0
    batch_size: int = 256
    holdout_ratio: float = 0.2
    max_holdout: int = 5000
    max_epochs: int = 50
    patience: int | None = 5
    improvement_threshold: float = 0.01
    holdout_metric: str = "mse"
    bootstrap: bool = False
    min_logvar_init: float = -10.0
    max_logvar_init: float = 0.5
    logvar_penalty: float = 0.01
    nll_beta: float = 0.0
    termination_loss_weight: float = 1.0

    def __post_init__(self) -> None:
        v = validation
        for name in ("ensemble_size", "batch_size", "max_holdout", "max_epochs"):
            v.field_int(self, name)
        v.field_int_tuple(self, "hidden_sizes")
        v.field_choice(self, "activation", ACTIVATIONS)
        for name in ("probabilistic", "predict_reward", "predict_termination", "bootstrap"):
            v.field_bool(self, name)
        if self.num_elites is not None:
            v.field_int(self, "num_elites", 1, self.ensemble_size)
        v.field_float(self, "learning_rate", 0.0, lo_open=True)
        self._check_weight_decays()
        v.field_float(self, "holdout_ratio", 0.0, 1.0, hi_open=True)
        v.field_optional_int(self, "patience")
        v.field_float(self, "improvement_threshold", 0.0, 1.0, hi_open=True)
        v.field_choice(self, "holdout_metric", HOLDOUT_METRICS)
        if self.holdout_metric == "nll" and not self.probabilistic:
            raise v.field_error(self, "holdout_metric", "'mse' when probabilistic=False")
        v.field_float(self, "min_logvar_init")
        v.field_float(self, "max_logvar_init")
        if not self.min_logvar_init < self.max_logvar_init:
            raise v.field_error(
                self, "min_logvar_init", f"< max_logvar_init={self.max_logvar_init!r}"
            )
        v.field_float(self, "nll_beta", 0.0, 1.0)
        for name in ("logvar_penalty", "termination_loss_weight"):
            v.field_float(self, name, 0.0)

    def _check_weight_decays(self) -> None:
        wd = self.weight_decays
        n_layers = len(self.hidden_sizes) + 1
        if isinstance(wd, tuple):
            ok = len(wd) == n_layers and all(validation.is_number(w) and w >= 0 for w in wd)
        else:
            ok = validation.is_number(wd) and wd >= 0
        if not ok:
            raise validation.field_error(
                self, "weight_decays", f"a float >= 0 or a tuple of {n_layers} of them "
                "(hidden layers + output)"
            )

    @property
    def elites_count(self) -> int:
        """Number of elite members K (all members when num_elites is None)."""
        return self.ensemble_size if self.num_elites is None else self.num_elites

    @property
    def layer_weight_decays(self) -> tuple[float, ...]:
        """One L2 coefficient per layer (hidden layers, then the output layer)."""
        n = len(self.hidden_sizes) + 1
        if isinstance(self.weight_decays, tuple):
            return tuple(float(w) for w in self.weight_decays)
        return (float(self.weight_decays),) * n
