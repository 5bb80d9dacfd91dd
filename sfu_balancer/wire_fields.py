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


# A field's plan: (name, required, hint, the exact types ``_check`` would return unchanged).
# A value of one of those exact types is accepted as it is; any other value takes ``_check``,
# which converts (an int to a float) or refuses it. The plan is computed once per class:
# reflecting on the hints of every frame cost a few microseconds per join.
_Plan = tuple[tuple[str, bool, Any, frozenset[type]], ...]
_PLANS: dict[type, _Plan] = {}
_EXACT: frozenset[Any] = frozenset({str, int, bool, type(None)})  # returned unchanged by _check


def _as_is(hint: Any) -> frozenset[type]:
    """The exact types a value of ``hint`` may have to pass unchecked (floats must be finite,
    so they always take ``_check``)."""
    origin = typing.get_origin(hint)
    options = typing.get_args(hint) if origin is Union or origin is types.UnionType else (hint,)
    return frozenset(o for o in options if o in _EXACT)


def _plan(cls: type) -> _Plan:
    plan = _PLANS.get(cls)
    if plan is None:
        hints = typing.get_type_hints(cls)
        plan = _PLANS[cls] = tuple(
            (f.name, f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
             hints[f.name], _as_is(hints[f.name]))
            for f in dataclasses.fields(cls))
    return plan


def build(cls: type, frame: dict[str, Any], where: str) -> object:
    kwargs: dict[str, Any] = {}
    for name, required, hint, as_is in _plan(cls):
        if name not in frame:
            if required:
                raise FieldError(f"{where}: missing field {name!r}")
            continue
        value = frame[name]
        kwargs[name] = value if type(value) in as_is else _check(hint, value, f"{where}.{name}")
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
