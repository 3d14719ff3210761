"""Helpers for frozen-dataclass configs: dotted overrides from strings, JSON round trips.

Every agent's `Config` is a (possibly nested) frozen dataclass. The CLI turns
`--config.model.hidden_sizes=200,200` into `override(config, "model.hidden_sizes", "200,200")`.

A field may *select the type* of another field, e.g. PETS' `planner` selects which config class
`planner_config` holds. Declare it with `selector`:

    planner: str = configs.selector("planner_config", default_for=planners.planner_config,
                                    default="cem")
    planner_config: Any = None

Then `apply_overrides(config, {"planner": "icem", "planner_config.horizon": "20"})` switches the
planner first, replaces `planner_config` by `default_for("icem")` (the new planner's defaults:
the old planner's settings do not fit the new type), and only then applies the
`planner_config.*` overrides to it. Setting the selector to its current value keeps the
dependent field as it is. `from_dict` uses the same declaration to rebuild the dependent field.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import types
import typing
from typing import Any, Callable, Union

# Field metadata key of a selector: (dependent field name, default_for(selector value) -> value).
_SELECTS = "mbjax.selects"


def to_dict(config: Any) -> dict[str, Any]:
    """A JSON-friendly dict of a (nested) dataclass config."""
    return json.loads(json.dumps(dataclasses.asdict(config), default=str))


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def selector(
    dependent: str, *, default_for: Callable[[Any], Any], default: Any = dataclasses.MISSING
) -> Any:
    """A dataclass field whose value selects the type of field `dependent` (see module docstring).

    default_for(value) returns the dependent field's value to use after switching the selector to
    `value` (e.g. that planner's default config); it raises ValueError for an unknown value.
    """
    return dataclasses.field(default=default, metadata={_SELECTS: (dependent, default_for)})


def selectors(config_or_class: Any) -> dict[str, tuple[str, Callable[[Any], Any]]]:
    """The selector fields of a dataclass: {selector: (dependent, default_for)}."""
    return {f.name: f.metadata[_SELECTS] for f in dataclasses.fields(config_or_class)
            if _SELECTS in f.metadata}


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
        if isinstance(node.get(last), dict):
            raise ValueError(f"config field {path!r} is set and also given sub-fields")
        node[last] = text
    return _apply_tree(config, tree, prefix="")


def check_path(config: Any, path: str) -> None:
    """ValueError (naming close matches) unless the dotted `path` is a field of `config`."""
    node, done = config, ""
    for head in path.split("."):
        if not dataclasses.is_dataclass(node):
            raise ValueError(f"config field {done.rstrip('.')!r} has no sub-fields")
        if head not in {f.name for f in dataclasses.fields(node)}:
            raise _unknown_field(node, head, done + head)
        node, done = getattr(node, head), done + head + "."


def _unknown_field(config: Any, head: str, path: str) -> ValueError:
    """`config`: a dataclass instance or class."""
    fields = [f.name for f in dataclasses.fields(config)]
    close = difflib.get_close_matches(head, fields, n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    owner = config if isinstance(config, type) else type(config)
    return ValueError(
        f"unknown config field {path!r} in {owner.__name__}{hint}; "
        f"known fields: {', '.join(sorted(fields))}"
    )


def _apply_value(current: Any, sub: Any, typ: Any, path: str) -> Any:
    """The new value of one field: `sub` is override text or a dict of sub-field overrides."""
    if isinstance(sub, dict):
        if not dataclasses.is_dataclass(current):
            raise ValueError(f"config field {path!r} has no sub-fields")
        return _apply_tree(current, sub, prefix=path + ".")
    if dataclasses.is_dataclass(current):
        raise ValueError(f"config field {path!r} is a group; set one of its fields instead")
    return _parse_value(sub, typ, path)


def _apply_selectors(config: Any, tree: dict[str, Any], prefix: str, hints: dict) -> dict:
    """Changes from switched selectors: the selector's new value, and its dependent field reset to
    `default_for(new value)` with the dependent's own sub-field overrides applied on top."""
    changes = {}
    for name, (dependent, default_for) in selectors(config).items():
        if name not in tree:
            continue
        value = _apply_value(getattr(config, name), tree[name], hints[name], prefix + name)
        changes[name] = value
        if value == getattr(config, name):
            continue  # unchanged: keep the dependent's current (e.g. preset) settings
        base = default_for(value)
        sub = tree.get(dependent, {})
        changes[dependent] = base if sub == {} else _apply_value(
            base, sub, hints[dependent], prefix + dependent
        )
    return changes


def _apply_tree(config: Any, tree: dict[str, Any], prefix: str) -> Any:
    fields = {f.name for f in dataclasses.fields(config)}
    hints = _field_types(type(config))
    for head in tree:
        if head not in fields:
            raise _unknown_field(config, head, prefix + head)
    # Selectors first: a switched selector replaces its dependent field before the dependent's
    # sub-fields are applied, so those land on the new type's defaults.
    changes = _apply_selectors(config, tree, prefix, hints)
    for head, sub in tree.items():
        if head not in changes:
            changes[head] = _apply_value(getattr(config, head), sub, hints[head], prefix + head)
    # One replace for all fields of this dataclass: `__post_init__` validates them together.
    return dataclasses.replace(config, **changes)


def from_dict(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    """Rebuilds a (nested) dataclass config from `to_dict` output (e.g. a run's config.json).

    Missing fields take their defaults; an unknown field or a non-dict group raises ValueError
    naming its dotted path (a config.json from another version must not load silently).
    """
    if not isinstance(data, dict):
        raise ValueError(f"config {prefix.rstrip('.') or cls.__name__!r} is "
                         f"{type(data).__name__}, expected an object of {cls.__name__}'s fields")
    hints = _field_types(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    for name in data:
        if name not in fields:
            raise _unknown_field(cls, name, prefix + name)
    dependents = {dep: (name, default_for) for name, (dep, default_for) in selectors(cls).items()}
    kwargs = {}
    for name, value in data.items():
        typ = hints[name]
        if name in dependents and isinstance(value, dict) and dependents[name][0] in data:
            # A selected field's class comes from its selector (e.g. the planner's config class).
            selector_name, default_for = dependents[name]
            typ = type(default_for(data[selector_name]))
        if dataclasses.is_dataclass(typ) and isinstance(value, dict):
            value = from_dict(typ, value, prefix + name + ".")
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)
