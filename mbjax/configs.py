"""Helpers for frozen-dataclass configs: dotted overrides from strings, JSON round trips.

Every agent's `Config` is a (possibly nested) frozen dataclass. The CLI turns
`--config.model.hidden_sizes=200,200` into `override(config, "model.hidden_sizes", "200,200")`.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import types
import typing
from typing import Any, Union


def to_dict(config: Any) -> dict[str, Any]:
    """A JSON-friendly dict of a (nested) dataclass config."""
    return json.loads(json.dumps(dataclasses.asdict(config), default=str))


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _parse_scalar(text: str, typ: Any, path: str) -> Any:
    if typ is bool:
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"--config.{path}={text!r}: expected a boolean (true/false)")
    if typ in (int, float, str):
        try:
            return typ(text)
        except ValueError:
            raise ValueError(f"--config.{path}={text!r}: expected {typ.__name__}") from None
    raise ValueError(f"--config.{path}: cannot parse a value of type {typ!r} from the command line")


def _parse_value(text: str, typ: Any, path: str) -> Any:
    origin = typing.get_origin(typ)
    args = typing.get_args(typ)
    if origin in (Union, types.UnionType):
        non_none = [a for a in args if a is not type(None)]
        if text.strip().lower() in ("none", "null") and type(None) in args:
            return None
        if len(non_none) == 1:
            return _parse_value(text, non_none[0], path)
        for candidate in non_none:
            try:
                return _parse_value(text, candidate, path)
            except ValueError:
                continue
        raise ValueError(f"--config.{path}={text!r}: expected one of {non_none}")
    if origin is tuple:
        item_type = args[0] if args else str
        items = [t for t in text.replace("(", "").replace(")", "").split(",") if t.strip()]
        return tuple(_parse_value(t.strip(), item_type, path) for t in items)
    if typing.get_origin(typ) is typing.Literal:
        if text not in args:
            raise ValueError(f"--config.{path}={text!r}: allowed values are {list(args)}")
        return text
    return _parse_scalar(text, typ, path)


def override(config: Any, path: str, text: str) -> Any:
    """Returns a copy of `config` with the dotted field `path` set from the string `text`.

    Raises ValueError naming the unknown field (with close matches) or the unparsable value.
    Validation of the new value happens in the dataclass's own `__post_init__`.
    """
    head, _, rest = path.partition(".")
    fields = {f.name: f for f in dataclasses.fields(config)}
    if head not in fields:
        close = difflib.get_close_matches(head, fields, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ValueError(
            f"unknown config field {path!r} in {type(config).__name__}{hint}; "
            f"known fields: {', '.join(sorted(fields))}"
        )
    current = getattr(config, head)
    if rest:
        if not dataclasses.is_dataclass(current):
            raise ValueError(f"config field {head!r} has no sub-fields (got {path!r})")
        return dataclasses.replace(config, **{head: override(current, rest, text)})
    if dataclasses.is_dataclass(current):
        raise ValueError(f"config field {path!r} is a group; set one of its fields instead")
    typ = _field_types(type(config))[head]
    return dataclasses.replace(config, **{head: _parse_value(text, typ, path)})


def apply_overrides(config: Any, overrides: dict[str, str]) -> Any:
    for path, text in overrides.items():
        config = override(config, path, text)
    return config


def from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Rebuilds a (nested) dataclass config from `to_dict` output (e.g. a run's config.json)."""
    hints = _field_types(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        value = data[f.name]
        typ = hints[f.name]
        if dataclasses.is_dataclass(typ) and isinstance(value, dict):
            value = from_dict(typ, value)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[f.name] = value
    return cls(**kwargs)
