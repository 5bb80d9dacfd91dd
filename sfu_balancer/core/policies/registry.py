"""Name -> policy class registry. Names are the public contract used in ``[routing] policy``."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, TypeVar

from .base import Policy

_POLICIES: dict[str, type[Policy]] = {}

P = TypeVar("P", bound=type[Policy])


def register_policy(cls: P) -> P:
    """Class decorator: make ``cls`` available under ``cls.name``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    if cls.name in _POLICIES and _POLICIES[cls.name] is not cls:
        raise ValueError(f"policy {cls.name!r} is already registered")
    _POLICIES[cls.name] = cls
    return cls


def policy_names() -> list[str]:
    return sorted(_POLICIES)


def create_policy(name: str, **params: Any) -> Policy:
    """Build a policy by name. Unknown names or parameters raise ValueError listing what exists."""
    try:
        cls = _POLICIES[name]
    except KeyError:
        raise ValueError(
            f"unknown policy {name!r}; known policies: {', '.join(policy_names())}"
        ) from None
    allowed = {f.name for f in fields(cls) if f.init and not f.name.startswith("_")}
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ValueError(
            f"policy {name!r} has no parameter(s) {unknown}; "
            f"its parameters are: {sorted(allowed) or 'none'}"
        )
    return cls(**params)
