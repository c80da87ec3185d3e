"""Strict loading of frozen config dataclasses from JSON values, shared by every config read from a file."""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing

from amodal.errors import InputError


def config_from_dict(cls, values, where: str):
    """Build a frozen config dataclass from JSON values, strictly.

    Unknown or mistyped keys raise :class:`InputError` naming ``where`` (a file,
    or a default such as ``"synth config"``); nested dataclasses are built
    recursively; lists become tuples where the field is a tuple, integers become
    floats where it is a float. Fields left out keep their defaults.
    """
    if not isinstance(values, dict):
        raise InputError(f"{where}: expected a JSON object of config fields, got {type(values).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise InputError(f"{where}: unknown keys {unknown}; valid keys are {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    kwargs = {name: _coerce(value, hints[name], f"{where}: {name}") for name, value in values.items()}
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as e:
        message = str(e)
        raise InputError(message if message.startswith(where) else f"{where}: {message}") from None


def _coerce(value, hint, where: str):
    """Check one JSON value against a field's type hint; hints other than these pass the value through."""
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return config_from_dict(hint, value, where)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise InputError(f"{where} must be a list, got {_show(value)}")
        args = typing.get_args(hint)
        inner = args[0] if args else object
        return tuple(_coerce(v, inner, where) for v in value)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return _coerce(value, args[0], where)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value):
            raise InputError(f"{where} must be a finite number, got {_show(value)}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"{where} must be an integer, got {_show(value)}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise InputError(f"{where} must be true or false, got {_show(value)}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise InputError(f"{where} must be a string, got {_show(value)}")
        return value
    return value


def _finite(number) -> bool:
    """False for NaN, infinities and integers beyond the float range (JSON has all three)."""
    try:
        return math.isfinite(number)
    except OverflowError:
        return False


def _show(value) -> str:
    """A value as it reads in the JSON file (``true``, ``"16"``)."""
    return json.dumps(value, default=repr)
