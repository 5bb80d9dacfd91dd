"""Pure header rewriting: offsets, extensions, continuity across sources, RTX repair."""

from __future__ import annotations

import struct

from bridges import aiortc_adapter as adapter
from bridges.sfu.rtp import ExtensionLayout, OutStream, vp8_keyframe_start


def _parse(data: bytes, mid_id: int, dyn_id: int, audio: bool) -> adapter.RtpPacket:
    """Parse as a subscriber would, with MID and abs-send-time / audio-level ids negotiated."""
    dyn = adapter.URI_AUDIO_LEVEL if audio else adapter.URI_ABS_SEND_TIME
    return adapter.parse_rtp(data, {adapter.URI_MID: mid_id, dyn: dyn_id})


def _stream(**kw: object) -> OutStream:
    args: dict[str, object] = dict(
        pt=97, ssrc=0xABCDEF01, clock_rate=90000, ext=ExtensionLayout("3", 1, 3, 3),
        rtx_pt=98, rtx_ssrc=0x01020304, keep_history=True,
    )
    args.update(kw)
    return OutStream(**args)  # type: ignore[arg-type]


def test_rewrite_sets_ssrc_pt_seq_ts_and_mid_parsable_by_aiortc() -> None:
    out = _stream()
    out.start(in_seq=1000, in_ts=5000, now=0.0)
    data, ts = out.rewrite(1000, 5000, 1, b"\x10payload", 0, b"\x01\x02\x03", 0.0) or (b"", 0)
    p = _parse(data, 1, 3, audio=False)
    assert (p.ssrc, p.payload_type, p.marker, p.payload) == (0xABCDEF01, 97, 1, b"\x10payload")
    assert p.extensions.mid == "3"
    assert p.extensions.abs_send_time == 0x010203
    assert p.timestamp == ts
    first_seq = p.sequence_number
    data2, ts2 = out.rewrite(1003, 5000 + 9000, 0, b"x", 0, None, 0.1) or (b"", 0)
    p2 = _parse(data2, 1, 3, audio=False)
    assert p2.sequence_number == (first_seq + 3) & 0xFFFF  # gaps stay gaps (NACK-able)
    assert (ts2 - ts) & 0xFFFFFFFF == 9000
    assert p2.extensions.mid == "3" and p2.extensions.abs_send_time is None


def test_audio_level_and_padding() -> None:
    out = _stream(clock_rate=48000, ext=ExtensionLayout("11", 1, 2, 1), keep_history=False)
    out.start(7, 0, 0.0)
    data, _ = out.rewrite(7, 960, 0, b"opus", 5, bytes([0x80 | 42]), 0.0) or (b"", 0)
    p = _parse(data, 1, 2, audio=True)
    assert p.extensions.audio_level == (True, 42)
    assert p.extensions.mid == "11"
    assert p.payload == b"opus" and p.padding_size == 5


def test_switching_sources_continues_numbering_and_time() -> None:
    out = _stream()
    out.start(100, 1000, now=10.0)
    assert out.rewrite(100, 1000, 0, b"a", 0, None, 10.0) is not None
    last, last_ts = out.rewrite(101, 4000, 0, b"a", 0, None, 10.0) or (b"", 0)
    out.stop()
    out.start(60000, 123, now=10.5)  # another publisher, unrelated numbering
    nxt, ts = out.rewrite(60000, 123, 0, b"b", 0, None, 10.5) or (b"", 0)
    seq = lambda d: struct.unpack_from("!H", d, 2)[0]  # noqa: E731
    assert seq(nxt) == (seq(last) + 1) & 0xFFFF
    assert (ts - last_ts) & 0xFFFFFFFF == 45000  # 0.5 s of 90 kHz
    # a packet reordered from before the switch is not sent with a number we already used
    assert out.rewrite(59999, 0, 0, b"old", 0, None, 10.5) is None


def test_repair_wraps_in_rtx_with_original_sequence_number() -> None:
    out = _stream()
    out.start(5, 0, 0.0)
    data, _ = out.rewrite(5, 0, 1, b"\x10frame", 0, b"\x00\x00\x01", 0.0) or (b"", 0)
    seq = struct.unpack_from("!H", data, 2)[0]
    rtx = out.repair(seq, 1.0)
    assert rtx is not None
    p = _parse(rtx, 1, 3, audio=False)
    assert (p.ssrc, p.payload_type, p.marker) == (0x01020304, 98, 1)
    assert p.payload == struct.pack("!H", seq) + b"\x10frame"
    assert out.repair((seq + 1) & 0xFFFF, 1.0) is None  # never sent
    plain = _stream(rtx_pt=None)
    plain.start(5, 0, 0.0)
    again, _ = plain.rewrite(5, 0, 0, b"z", 0, None, 0.0) or (b"", 0)
    assert plain.repair(struct.unpack_from("!H", again, 2)[0], 1.0) == again


def test_a_packet_is_retransmitted_at_most_once_per_interval() -> None:
    from bridges.sfu.rtp import REPAIR_INTERVAL_S

    out = _stream()
    out.start(5, 0, 0.0)
    data, _ = out.rewrite(5, 0, 0, b"frame", 0, None, 0.0) or (b"", 0)
    seq = struct.unpack_from("!H", data, 2)[0]
    assert out.repair(seq, 10.0) is not None
    assert out.repair(seq, 10.0 + REPAIR_INTERVAL_S / 2) is None  # a NACK repeated at once
    assert out.repair(seq, 10.0 + REPAIR_INTERVAL_S * 1.01) is not None  # the repair was lost
    # a new packet in the same history slot is repairable at once
    out2 = _stream()
    out2.start(5, 0, 0.0)
    first, _ = out2.rewrite(5, 0, 0, b"a", 0, None, 0.0) or (b"", 0)
    assert out2.repair(struct.unpack_from("!H", first, 2)[0], 3.0) is not None
    for n in range(6, 5 + 512):  # wrap the history: the next packet takes the first's slot
        out2.rewrite(n, 0, 0, b"b", 0, None, 0.0)
    same_slot, _ = out2.rewrite(5 + 512, 0, 0, b"c", 0, None, 0.0) or (b"", 0)
    assert out2.repair(struct.unpack_from("!H", same_slot, 2)[0], 3.0) is not None


def test_vp8_keyframe_detection() -> None:
    # S=1, PID=0, no extension, then VP8 header byte with P=0 (key) / P=1 (delta)
    assert vp8_keyframe_start(bytes([0x10, 0x00]))
    assert not vp8_keyframe_start(bytes([0x10, 0x01]))
    assert not vp8_keyframe_start(bytes([0x00, 0x00]))  # not a partition start
    # X=1 with I (15-bit picture id), L, T: 1 + 1 + 2 + 1 + 1 bytes of descriptor
    assert vp8_keyframe_start(bytes([0x90, 0xE0, 0x80, 0x01, 0x05, 0x20, 0x00]))
    assert not vp8_keyframe_start(bytes([0x90, 0xE0, 0x80, 0x01, 0x05, 0x20, 0x01]))
    assert not vp8_keyframe_start(b"")
    assert not vp8_keyframe_start(bytes([0x90]))
