"""The balancer <-> bridge link messages: round trips, refusals, and the import rule."""

from __future__ import annotations

import contextlib
import subprocess
import sys

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sfu_balancer import wire

SAMPLES: list[wire.Message] = [
    wire.Hello(
        id="b1", host="h1", region="eu", version="0.1.0",
        capacity=wire.Capacity(cpu=1.0, egress_mbps=800.0, ingress_mbps=400.0), pid=42,
    ),
    wire.Report(
        cpu=0.35, host_cpu=0.2, bytes_in_per_s=1e5, bytes_out_per_s=4e5,
        packets_in_per_s=100.0, packets_out_per_s=400.0, participants=3, rooms=1,
        relay_streams=0, measured_at=12.5,
        capacity=wire.Capacity(cpu=1.0, egress_mbps=800.0, ingress_mbps=400.0),
    ),
    wire.Allocate(req=1, room="r", participant="p", sdp="v=0\r\n"),
    wire.Allocated(req=1, room="r", participant="p", sdp="v=0\r\n"),
    wire.Offer(
        room="r", participant="p", sdp="v=0", seq=3,
        tracks=[wire.TrackInfo(mid="0", kind="video", participant="q")],
    ),
    wire.Answer(room="r", participant="p", sdp="v=0", seq=3),
    wire.Release(room="r", participant="p"),
    wire.RelayOpen(req=7, room="r", relay="x", peer="b2"),
    wire.RelayOpen(req=8, room="r", relay="x", peer="b2", sdp="v=0"),
    wire.RelayAccept(req=7, room="r", relay="x", kind="offer", sdp="v=0", seq=1),
    wire.RelayClose(room="r", relay="x"),
    wire.Sync(participants=[wire.Seat(room="r", participant="p")]),
    wire.Sync(),
    wire.Drain(deadline_s=30.0),
    wire.Bye(reason="sigterm"),
    wire.Error(code="malformed", reason="x", req=None, about="allocate"),
]


def test_every_type_has_a_sample() -> None:
    assert {type(m) for m in SAMPLES} == set(wire.MESSAGE_TYPES.values())


@pytest.mark.parametrize("message", SAMPLES, ids=lambda m: m.TYPE)
def test_round_trip(message: wire.Message) -> None:
    data = wire.encode(message)
    frame = msgpack.unpackb(data)
    assert frame["v"] == wire.PROTOCOL_VERSION
    assert frame["t"] == message.TYPE
    assert wire.decode(data) == message


def test_report_keys_match_the_load_report_contract() -> None:
    frame = msgpack.unpackb(wire.encode(SAMPLES[1]))
    for key in (
        "cpu", "host_cpu", "bytes_in_per_s", "bytes_out_per_s", "packets_in_per_s",
        "packets_out_per_s", "participants", "rooms", "relay_streams", "measured_at",
    ):
        assert key in frame


def test_a_report_without_capacity_still_decodes() -> None:
    frame = msgpack.unpackb(wire.encode(SAMPLES[1]))
    del frame["capacity"]  # an older bridge
    report = wire.decode(msgpack.packb(frame))
    assert isinstance(report, wire.Report) and report.capacity is None
    frame["capacity"] = {"cpu": "one"}
    with pytest.raises(wire.WireError, match="capacity"):
        wire.decode(msgpack.packb(frame))


def test_hello_carries_identity_capacity_pid_and_auth() -> None:
    frame = msgpack.unpackb(wire.encode(SAMPLES[0]))
    assert {"id", "host", "region", "version", "capacity", "pid", "auth"} <= frame.keys()
    assert frame["capacity"] == {"cpu": 1.0, "egress_mbps": 800.0, "ingress_mbps": 400.0}


def _frame(**fields: object) -> bytes:
    return msgpack.packb(fields)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", wire.ErrorCode.MALFORMED),
        (b"\xc1", wire.ErrorCode.MALFORMED),
        (msgpack.packb([1, 2]), wire.ErrorCode.MALFORMED),
        (_frame(t="hello"), wire.ErrorCode.VERSION),
        (_frame(v=2, t="hello"), wire.ErrorCode.VERSION),
        (_frame(v=True, t="hello"), wire.ErrorCode.VERSION),
        (_frame(v=1, t="teleport"), wire.ErrorCode.UNKNOWN_TYPE),
        (_frame(v=1), wire.ErrorCode.UNKNOWN_TYPE),
        (_frame(v=1, t="allocate", req=1, room="r", participant="p"), wire.ErrorCode.MALFORMED),
        (_frame(v=1, t="allocate", req="1", room="r", participant="p", sdp=""),
         wire.ErrorCode.MALFORMED),
        (_frame(v=1, t="allocate", req=True, room="r", participant="p", sdp=""),
         wire.ErrorCode.MALFORMED),
        (_frame(v=1, t="drain", deadline_s=float("nan")), wire.ErrorCode.MALFORMED),
        (_frame(v=1, t="offer", room="r", participant="p", sdp="", seq=1, tracks=[{"mid": 1}]),
         wire.ErrorCode.MALFORMED),
        (_frame(v=1, t="hello", id="b", host="h", region="r", version="1", pid=1, capacity=3),
         wire.ErrorCode.MALFORMED),
    ],
)
def test_refusals_are_wire_errors(data: bytes, code: str) -> None:
    with pytest.raises(wire.WireError) as info:
        wire.decode(data)
    assert info.value.code == code
    reply = wire.error_reply(info.value)
    assert wire.decode(wire.encode(reply)) == reply


def test_refusal_keeps_the_request_id_and_type() -> None:
    with pytest.raises(wire.WireError) as info:
        wire.decode(_frame(v=1, t="allocate", req=9, room="r"))
    assert info.value.req == 9
    assert info.value.type == "allocate"
    assert "sdp" in info.value.reason or "participant" in info.value.reason


def test_extra_keys_are_ignored_and_ints_pass_as_floats() -> None:
    message = wire.decode(_frame(v=1, t="drain", deadline_s=5, future_field="x"))
    assert message == wire.Drain(deadline_s=5.0)


def test_oversized_frame_is_refused_before_unpacking() -> None:
    with pytest.raises(wire.WireError):
        wire.decode(b"\x00" * (wire.MAX_FRAME_BYTES + 1))


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.binary(max_size=200))
def test_garbage_never_raises_anything_but_wire_error(data: bytes) -> None:
    with contextlib.suppress(wire.WireError):
        wire.decode(data)


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["v", "t", "req", "room", "participant", "sdp", "seq", "tracks"]),
        st.one_of(
            st.none(), st.integers(-(2**63), 2**63 - 1), st.text(max_size=5),
            st.lists(st.integers(0, 9)),
        ),
    )
)
def test_structured_garbage_never_raises_anything_but_wire_error(frame: dict[str, object]) -> None:
    with contextlib.suppress(wire.WireError):
        wire.decode(msgpack.packb(frame))


def test_all_is_complete() -> None:
    public = {n for n in dir(wire) if not n.startswith("_")}
    imported = {"Any", "ClassVar", "Union", "annotations", "dataclass", "dataclasses", "field",
                "math", "msgpack", "types", "typing"}
    assert public - imported == set(wire.__all__)


def test_import_pulls_in_nothing_heavy() -> None:
    code = (
        "import sys, sfu_balancer.wire\n"
        "bad = [m for m in ('asyncio', 'aiohttp', 'redis', 'aiortc') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_a_sync_with_a_bad_seat_names_it() -> None:
    data = msgpack.packb({"v": wire.PROTOCOL_VERSION, "t": "sync",
                          "participants": [{"room": "r", "participant": 5}]})
    with pytest.raises(wire.WireError, match=r"sync\.participants\[0\]\.participant"):
        wire.decode(data)
