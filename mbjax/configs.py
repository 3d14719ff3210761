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
    """Returns a copy of `config` with the dotted field `path` set from the string `text`."""
    return apply_overrides(config, {path: text})


def apply_overrides(config: Any, overrides: dict[str, str]) -> Any:
    """Returns a copy of `config` with every dotted `path: text` override applied.

    All overrides of one (nested) dataclass are applied in a single `dataclasses.replace`, so
    validation in `__post_init__` sees them together and their order does not matter.
    Raises ValueError naming an unknown field (with close matches) or an unparsable value.
    """
    tree: dict[str, Any] = {}
    for path, text in overrides.items():
        node = tree
        *heads, last = path.split(".")
        for head in heads:
            node = node.setdefault(head, {})
            if not isinstance(node, dict):
                raise ValueError(f"config field {head!r} is set and also given sub-fields")
        node[last] = text
    return _apply_tree(config, tree, prefix="")


def _apply_tree(config: Any, tree: dict[str, Any], prefix: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(config)}
    hints = _field_types(type(config))
    changes = {}
    for head, sub in tree.items():
        path = prefix + head
        if head not in fields:
            close = difflib.get_close_matches(head, fields, n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise ValueError(
                f"unknown config field {path!r} in {type(config).__name__}{hint}; "
                f"known fields: {', '.join(sorted(fields))}"
            )
        current = getattr(config, head)
        if isinstance(sub, dict):
            if not dataclasses.is_dataclass(current):
                raise ValueError(f"config field {path!r} has no sub-fields")
            changes[head] = _apply_tree(current, sub, prefix=path + ".")
        elif dataclasses.is_dataclass(current):
            raise ValueError(f"config field {path!r} is a group; set one of its fields instead")
        else:
            changes[head] = _parse_value(sub, hints[head], path)
    return dataclasses.replace(config, **changes)


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
