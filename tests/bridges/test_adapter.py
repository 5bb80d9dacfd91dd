"""The private aiortc names the bridge hooks: they must exist in the pinned aiortc."""

from __future__ import annotations

import ast
import pathlib

import aiortc
import pytest

from bridges import aiortc_adapter
from bridges.aiortc_adapter import hooks

ADAPTER = pathlib.Path(aiortc_adapter.__file__).parent  # bridges/aiortc_adapter/: the one place
BRIDGES = ADAPTER.parent
ROOT = BRIDGES.parent
TESTS = ROOT / "tests"


async def test_every_hooked_private_name_exists() -> None:
    # Fails loudly, naming what is gone, if aiortc changed under the pin.
    await aiortc_adapter.verify_hooks()


def test_aiortc_is_the_pinned_version() -> None:
    assert aiortc.__version__ == aiortc_adapter.PINNED_AIORTC


async def test_verify_hooks_reports_a_missing_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hooks, "_SENDER_ATTRS", ("_no_such_name",))
    with pytest.raises(aiortc_adapter.HookError, match=r"RTCRtpSender\._no_such_name"):
        await aiortc_adapter.verify_hooks()


async def test_verify_hooks_checks_the_rtp_packet_fields_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert "RtpPacket.padding_size" in aiortc_adapter.HOOKED_NAMES
    assert "RtpPacket.extensions.audio_level" in aiortc_adapter.HOOKED_NAMES
    monkeypatch.setattr(hooks, "_RTP_PACKET_ATTRS", ("payload", "no_such_field"))
    monkeypatch.setattr(hooks, "_RTP_EXTENSION_ATTRS", ("mid", "no_such_extension"))
    with pytest.raises(aiortc_adapter.HookError) as info:
        await aiortc_adapter.verify_hooks()
    assert "RtpPacket.no_such_field" in str(info.value)
    assert "RtpPacket.extensions.no_such_extension" in str(info.value)
    assert "RtpPacket.payload," not in str(info.value)


PUBLIC_AIORTC = frozenset(aiortc.__all__)
OWN = ("self", "cls")


def _offenders(where: str, source: str, private_attrs: bool = True) -> list[str]:
    """aiortc/aioice names used by ``source`` that only the adapter may use."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            module = node.module
            if module.startswith(("aiortc.", "aioice")):
                found.append(f"{where}:{node.lineno} from {module} import ...")
            elif module == "aiortc":
                found += [f"{where}:{node.lineno} from aiortc import {a.name}"
                          for a in node.names if a.name not in PUBLIC_AIORTC]
        elif isinstance(node, ast.Import):
            found += [f"{where}:{node.lineno} import {a.name}" for a in node.names
                      if a.name.startswith(("aiortc.", "aioice"))]
        elif isinstance(node, ast.Attribute):
            dunder = node.attr.startswith("__")
            if isinstance(node.value, ast.Name) and node.value.id == "aiortc":
                if node.attr not in PUBLIC_AIORTC and not dunder:
                    found.append(f"{where}:{node.lineno} aiortc.{node.attr}")
            elif (private_attrs and node.attr.startswith("_") and not dunder
                    and not (isinstance(node.value, ast.Name) and node.value.id in OWN)):
                found.append(f"{where}:{node.lineno} .{node.attr}")
    return found


def _exempt(path: pathlib.Path) -> bool:
    """Only the package ``bridges/aiortc_adapter/`` (all of it) may use aiortc internals."""
    return path.is_relative_to(ADAPTER)


def test_only_the_adapter_touches_private_aiortc_names() -> None:
    """Outside the package bridges/aiortc_adapter/, neither the bridge nor any test imports
    aioice, an aiortc submodule (``aiortc.rtp``, ``aiortc.clock`` ...) or a name that is not in
    ``aiortc.__all__``, nor reaches one as ``aiortc.<name>``. The bridge and its tests
    (tests/bridges, where aiortc objects are handled) also read no ``_private`` attribute of
    another object (our own ``self._x`` is fine)."""
    paths = [*BRIDGES.rglob("*.py"), *TESTS.rglob("*.py")]
    assert pathlib.Path(__file__) in paths and len(paths) > 20
    offenders = []
    for path in paths:
        if _exempt(path):
            continue
        strict = path.is_relative_to(BRIDGES) or path.is_relative_to(TESTS / "bridges")
        offenders += _offenders(str(path.relative_to(ROOT)), path.read_text(), strict)
    assert not offenders, offenders


def test_the_guard_catches_what_it_is_for() -> None:
    source = (
        "import aiortc\nimport aiortc.rtp\nfrom aiortc import clock, RTCPeerConnection\n"
        "from aiortc.rtp import RtpPacket\nfrom aioice import Candidate\nimport aioice.ice\n"
        "x = aiortc.rtcrtpsender\ny = pc._connection\nz = self._mine\n"
        "v = aiortc.__version__\nw = aiortc.RTCPeerConnection\n"
    )
    found = [f.split(" ", 1)[1] for f in _offenders("probe.py", source)]
    assert found == [
        "import aiortc.rtp", "from aiortc import clock", "from aiortc.rtp import ...",
        "from aioice import ...", "import aioice.ice", "aiortc.rtcrtpsender", "._connection",
    ], found
    assert "._connection" not in [
        f.split(" ", 1)[1] for f in _offenders("probe.py", source, private_attrs=False)
    ]


def test_the_exemption_is_the_adapter_package_only() -> None:
    adapter_modules = sorted(ADAPTER.glob("*.py"))
    assert ADAPTER == BRIDGES / "aiortc_adapter" and len(adapter_modules) > 1
    assert all(_exempt(path) for path in adapter_modules)
    # The exemption matters: the package does use what the guard catches everywhere else.
    assert any(_offenders(path.name, path.read_text()) for path in adapter_modules)
    for elsewhere in (
        BRIDGES / "aiortc_adapter.py", BRIDGES / "sfu" / "aiortc_adapter.py",
        BRIDGES / "sfu" / "hooks.py", BRIDGES / "aiortc_adapter_extra" / "hooks.py",
        TESTS / "bridges" / "aiortc_adapter" / "hooks.py", pathlib.Path(__file__),
    ):
        assert not _exempt(elsewhere), elsewhere
