"""The one way configs and factories check their inputs: one-line errors naming value and rule.

Every message has the form `<Owner>.<field>=<value> is invalid; allowed: <rule>`, e.g.
`CEMConfig.alpha=1.5 is invalid; allowed: a number in [0, 1)`. The CLI prints it as is.

Config dataclasses call the `field_*` helpers from `__post_init__`:

    def __post_init__(self):
        validation.field_int(self, "horizon")                  # an int >= 1
        validation.field_float(self, "alpha", 0.0, 1.0, hi_open=True)
        validation.field_choice(self, "sampling", ("truncated", "clip"))

Factories that check plain arguments use `check_*` with a display name (`"make_sac: obs_size"`).
"""

from __future__ import annotations

import math
from typing import Any, Iterable


def invalid(name: str, value: Any, allowed: str) -> ValueError:
    """The error every check raises: `<name>=<value!r> is invalid; allowed: <allowed>`."""
    return ValueError(f"{name}={value!r} is invalid; allowed: {allowed}")


def is_int(value: Any) -> bool:
    """A Python/numpy integer that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A finite int or float that is not a bool."""
    return (
        isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    )


def check_int(name: str, value: Any, lo: int = 1, hi: int | None = None) -> None:
    """An int in [lo, hi] (hi None: no upper bound)."""
    if not is_int(value) or value < lo or (hi is not None and value > hi):
        rule = f"an int >= {lo}" if hi is None else f"an int in [{lo}, {hi}]"
        raise invalid(name, value, rule)


def check_float(
    name: str,
    value: Any,
    lo: float = -math.inf,
    hi: float = math.inf,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
) -> None:
    """A finite number in the interval [lo, hi], each end open when asked."""
    ok = is_number(value)
    if ok:
        ok = (value > lo if lo_open else value >= lo) and (value < hi if hi_open else value <= hi)
    if not ok:
        if lo == -math.inf and hi == math.inf:
            rule = "a finite number"
        elif hi == math.inf:
            rule = f"a number {'>' if lo_open else '>='} {lo}"
        elif lo == -math.inf:
            rule = f"a number {'<' if hi_open else '<='} {hi}"
        else:
            rule = f"a number in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
        raise invalid(name, value, rule)


def check_choice(name: str, value: Any, allowed: Iterable[Any]) -> None:
    """One of `allowed`."""
    allowed = tuple(allowed)
    if value not in allowed:
        raise invalid(name, value, f"one of {list(allowed)}")


def check_bool(name: str, value: Any) -> None:
    """True or False (not 0/1)."""
    if not isinstance(value, bool):
        raise invalid(name, value, "True or False")


def check_int_tuple(name: str, value: Any, lo: int = 1, length: int | None = None) -> None:
    """A non-empty tuple of ints >= lo (of exactly `length` items when given)."""
    ok = (
        isinstance(value, tuple)
        and len(value) > 0
        and (length is None or len(value) == length)
        and all(is_int(v) and v >= lo for v in value)
    )
    if not ok:
        count = "a non-empty tuple" if length is None else f"a tuple of {length}"
        raise invalid(name, value, f"{count} of ints >= {lo}")


# ----------------------------------------------------------------------------- dataclass fields


def _name(config: Any, field: str) -> str:
    return f"{type(config).__name__}.{field}"


def field_int(config: Any, field: str, lo: int = 1, hi: int | None = None) -> None:
    check_int(_name(config, field), getattr(config, field), lo, hi)


def field_optional_int(config: Any, field: str, lo: int = 1) -> None:
    """None or an int >= lo."""
    value = getattr(config, field)
    if value is not None and (not is_int(value) or value < lo):
        raise invalid(_name(config, field), value, f"None or an int >= {lo}")


def field_float(config: Any, field: str, lo: float = -math.inf, hi: float = math.inf, *,
                lo_open: bool = False, hi_open: bool = False) -> None:
    check_float(_name(config, field), getattr(config, field), lo, hi,
                lo_open=lo_open, hi_open=hi_open)


def field_choice(config: Any, field: str, allowed: Iterable[Any]) -> None:
    check_choice(_name(config, field), getattr(config, field), allowed)


def field_bool(config: Any, field: str) -> None:
    check_bool(_name(config, field), getattr(config, field))


def field_int_tuple(config: Any, field: str, lo: int = 1, length: int | None = None) -> None:
    """A tuple, not a list: configs are hashable (`configs.from_dict` turns JSON lists into
    tuples)."""
    check_int_tuple(_name(config, field), getattr(config, field), lo, length)


def field_error(config: Any, field: str, allowed: str) -> ValueError:
    """The standard error for a rule the helpers above do not express (e.g. between fields)."""
    return invalid(_name(config, field), getattr(config, field), allowed)
