"""Static configuration of an ensemble dynamics model and its training."""

from __future__ import annotations

import dataclasses

ACTIVATIONS = ("swish", "silu", "relu", "tanh", "elu", "gelu", "leaky_relu")
HOLDOUT_METRICS = ("mse", "nll")


def _bad(field: str, value: object, allowed: str) -> ValueError:
    return ValueError(f"EnsembleConfig.{field}={value!r} is invalid; allowed: {allowed}")


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
        def pos_int(name: str) -> None:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise _bad(name, v, "a positive int")

        for name in ("ensemble_size", "batch_size", "max_holdout", "max_epochs"):
            pos_int(name)
        hs = self.hidden_sizes
        if (
            not isinstance(hs, tuple)
            or len(hs) == 0
            or any(isinstance(h, bool) or not isinstance(h, int) or h <= 0 for h in hs)
        ):
            raise _bad("hidden_sizes", hs, "a non-empty tuple of positive ints")
        if self.activation not in ACTIVATIONS:
            raise _bad("activation", self.activation, f"one of {ACTIVATIONS}")
        if self.num_elites is not None:
            k = self.num_elites
            if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= self.ensemble_size:
                raise _bad("num_elites", k, f"None or an int in [1, {self.ensemble_size}]")
        if not (isinstance(self.learning_rate, (int, float)) and self.learning_rate > 0):
            raise _bad("learning_rate", self.learning_rate, "a float > 0")
        wd = self.weight_decays
        n_layers = len(hs) + 1
        if isinstance(wd, (int, float)) and not isinstance(wd, bool):
            if wd < 0:
                raise _bad("weight_decays", wd, "a float >= 0 or a tuple of them")
        elif isinstance(wd, tuple):
            if len(wd) != n_layers or any(
                isinstance(w, bool) or not isinstance(w, (int, float)) or w < 0 for w in wd
            ):
                raise _bad(
                    "weight_decays", wd, f"a tuple of {n_layers} floats >= 0 (hidden + output)"
                )
        else:
            raise _bad("weight_decays", wd, f"a float >= 0 or a tuple of {n_layers} of them")
        if not (isinstance(self.holdout_ratio, (int, float)) and 0.0 <= self.holdout_ratio < 1.0):
            raise _bad("holdout_ratio", self.holdout_ratio, "a float in [0, 1)")
        if self.patience is not None:
            p = self.patience
            if isinstance(p, bool) or not isinstance(p, int) or p <= 0:
                raise _bad("patience", p, "None (no early stopping) or a positive int")
        if not (
            isinstance(self.improvement_threshold, (int, float))
            and 0.0 <= self.improvement_threshold < 1.0
        ):
            raise _bad("improvement_threshold", self.improvement_threshold, "a float in [0, 1)")
        if self.holdout_metric not in HOLDOUT_METRICS:
            raise _bad("holdout_metric", self.holdout_metric, f"one of {HOLDOUT_METRICS}")
        if self.holdout_metric == "nll" and not self.probabilistic:
            raise _bad("holdout_metric", "nll", "'mse' when probabilistic=False")
        if not self.min_logvar_init < self.max_logvar_init:
            raise ValueError(
                f"EnsembleConfig.min_logvar_init={self.min_logvar_init!r} must be < "
                f"max_logvar_init={self.max_logvar_init!r}"
            )
        if not (
            isinstance(self.nll_beta, (int, float))
            and not isinstance(self.nll_beta, bool)
            and 0.0 <= self.nll_beta <= 1.0
        ):
            raise _bad("nll_beta", self.nll_beta, "a float in [0, 1]")
        for name in ("logvar_penalty", "termination_loss_weight"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v >= 0):
                raise _bad(name, v, "a float >= 0")

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
