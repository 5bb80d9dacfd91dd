"""Validation of decoded frames against the message dataclasses' type hints (used by ``wire``).

Rules of this module:
- It imports only the standard library: bridges import it through ``wire``.
- ``build`` returns an instance of the dataclass or raises ``FieldError``, whatever the map,
  naming the dotted field (``offer.tracks[0].mid``) and what it expected; ``wire.decode`` turns
  that into a ``malformed`` ``WireError``.
- Fields with a default may be missing; unknown extra keys are ignored. bool is never accepted
  as an int or float, floats must be finite, and an int passes as a float.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, Union


class FieldError(Exception):
    """A missing or mistyped field; the message names it."""


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    hints = _HINTS.get(cls)
    if hints is None:
        hints = typing.get_type_hints(cls)
        _HINTS[cls] = hints
    return hints


def build(cls: type, frame: dict[str, Any], where: str) -> object:
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in frame:
            has_default = (
                f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
            )
            if has_default:
                continue
            raise FieldError(f"{where}: missing field {f.name!r}")
        kwargs[f.name] = _check(hints[f.name], frame[f.name], f"{where}.{f.name}")
    return cls(**kwargs)


def _check(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin is Union or origin is types.UnionType:
        for option in typing.get_args(hint):
            try:
                return _check(option, value, where)
            except FieldError:
                continue
        raise FieldError(f"{where}: {_describe(value)} matches none of {hint}")
    if hint is type(None):
        if value is None:
            return None
    elif hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            if math.isfinite(value):
                return float(value)
            raise FieldError(f"{where}: must be finite, got {value!r}")
    elif hint is str:
        if isinstance(value, str):
            return value
    elif origin is list:
        if isinstance(value, list):
            (item,) = typing.get_args(hint)
            return [_check(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    elif dataclasses.is_dataclass(hint):
        if isinstance(value, dict):
            return build(hint, value, where)  # type: ignore[arg-type]
    else:  # pragma: no cover - a message declared a field type this checker does not know
        raise FieldError(f"{where}: unsupported field type {hint!r}")
    expected = getattr(hint, "__name__", hint)
    raise FieldError(f"{where}: expected {expected}, got {_describe(value)}")


def _describe(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"[:80]
