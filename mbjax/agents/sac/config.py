"""SAC configuration: static structure plus the default values of the numeric hyperparameters."""

from __future__ import annotations

import dataclasses
import math


def _positive_int_tuple(name: str, value: object) -> None:
    if (
        not isinstance(value, tuple)
        or len(value) == 0
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
    ):
        raise ValueError(
            f"SACConfig.{name} must be a non-empty tuple of positive ints, got {value!r}"
        )


def _in_range(name: str, value: object, lo: float, hi: float, lo_open: bool, hi_open: bool) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > lo if lo_open else value >= lo) and (value < hi if hi_open else value <= hi)
    if not ok:
        lb = "(" if lo_open else "["
        rb = ")" if hi_open else "]"
        raise ValueError(f"SACConfig.{name} must be a number in {lb}{lo}, {hi}{rb}, got {value!r}")


@dataclasses.dataclass(frozen=True)
class SACConfig:
    """Soft actor-critic (Haarnoja et al. 2018) with twin critics and a learned temperature.

    Structural fields (network sizes, number of critics, batch size, observation normalisation) are
    static. The numeric fields (learning rates, discount, tau, reward scale, target entropy) are
    only the *initial* values: `make_sac(...).init` copies them into the state as array leaves, so a
    sweep can vmap over them without recompiling.
    """

    hidden_sizes: tuple[int, ...] = (256, 256)
    num_critics: int = 2
    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    alpha_lr: float = 3e-4
    discount: float = 0.99
    tau: float = 0.005
    init_alpha: float = 1.0
    target_entropy: float | None = None  # None -> -action_size
    batch_size: int = 256
    reward_scale: float = 1.0
    log_std_min: float = -5.0
    log_std_max: float = 2.0
    normalize_observations: bool = False

    def __post_init__(self) -> None:
        # Lists from CLI overrides are accepted and frozen into tuples.
        if isinstance(self.hidden_sizes, list):
            object.__setattr__(self, "hidden_sizes", tuple(self.hidden_sizes))
        _positive_int_tuple("hidden_sizes", self.hidden_sizes)
        if (
            not isinstance(self.num_critics, int)
            or isinstance(self.num_critics, bool)
            or self.num_critics < 1
        ):
            raise ValueError(f"SACConfig.num_critics must be an int >= 1, got {self.num_critics!r}")
        for name in ("actor_lr", "critic_lr", "alpha_lr"):
            _in_range(name, getattr(self, name), 0.0, math.inf, True, True)
        _in_range("discount", self.discount, 0.0, 1.0, False, False)
        _in_range("tau", self.tau, 0.0, 1.0, True, False)
        _in_range("init_alpha", self.init_alpha, 0.0, math.inf, True, True)
        if self.target_entropy is not None:
            _in_range("target_entropy", self.target_entropy, -math.inf, math.inf, True, True)
        if (
            not isinstance(self.batch_size, int)
            or isinstance(self.batch_size, bool)
            or self.batch_size < 1
        ):
            raise ValueError(f"SACConfig.batch_size must be an int >= 1, got {self.batch_size!r}")
        _in_range("reward_scale", self.reward_scale, 0.0, math.inf, True, True)
        _in_range("log_std_min", self.log_std_min, -math.inf, math.inf, True, True)
        _in_range("log_std_max", self.log_std_max, -math.inf, math.inf, True, True)
        if not self.log_std_min < self.log_std_max:
            raise ValueError(
                "SACConfig.log_std_min must be < log_std_max, got "
                f"log_std_min={self.log_std_min!r}, log_std_max={self.log_std_max!r}"
            )
        if not isinstance(self.normalize_observations, bool):
            raise ValueError(
                "SACConfig.normalize_observations must be a bool, got "
                f"{self.normalize_observations!r}"
            )
