"""The private aiortc names the bridge hooks: they must exist in the pinned aiortc."""

from __future__ import annotations

import ast
import pathlib

import aiortc
import pytest

from bridges import aiortc_adapter

BRIDGES = pathlib.Path(aiortc_adapter.__file__).parent


async def test_every_hooked_private_name_exists() -> None:
    # Fails loudly, naming what is gone, if aiortc changed under the pin.
    await aiortc_adapter.verify_hooks()


def test_aiortc_is_the_pinned_version() -> None:
    assert aiortc.__version__ == aiortc_adapter.PINNED_AIORTC


async def test_verify_hooks_reports_a_missing_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aiortc_adapter, "_SENDER_ATTRS", ("_no_such_name",))
    with pytest.raises(aiortc_adapter.HookError, match=r"RTCRtpSender\._no_such_name"):
        await aiortc_adapter.verify_hooks()


def test_only_the_adapter_touches_private_aiortc_names() -> None:
    """Outside aiortc_adapter.py no bridge module reads a ``_private`` attribute of an object
    or imports a private name from aiortc/aioice (our own ``self._x`` is fine)."""
    offenders = []
    for path in BRIDGES.rglob("*.py"):
        if path.name == "aiortc_adapter.py":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                ("aiortc", "aioice")
            ):
                offenders += [f"{path.name}: import {a.name}" for a in node.names
                              if a.name.startswith("_")]
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
            ):
                offenders.append(f"{path.name}:{node.lineno} .{node.attr}")
    assert not offenders, offenders
