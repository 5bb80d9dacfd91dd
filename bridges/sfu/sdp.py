"""A small SDP reader: enough to refuse bad offers with a clear reason before aiortc sees them,
and to read which participant each m-line of a relay offer carries (its msid stream id).

It does not replace aiortc's parser; it only checks what the bridge relies on:
- every audio m-line offers Opus and every video m-line offers VP8 (the bridge forwards, it
  cannot transcode, so every subscriber must be able to decode what a publisher sends);
- a single encoding per m-line (aiortc cannot receive simulcast: Chromium would fall back to
  its lowest layer, so a client that asked for simulcast gets a clear refusal instead).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sfu_balancer.wire import ErrorCode

MAX_SDP_BYTES = 256 * 1024
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
REQUIRED_CODEC = {"audio": "opus", "video": "vp8"}


class BridgeError(Exception):
    """A refused command: ``code`` is an ``ErrorCode`` value, ``reason`` is for humans."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


@dataclass
class MediaSection:
    kind: str
    port: int
    mid: str | None = None
    direction: str = "sendrecv"
    codecs: list[str] = field(default_factory=list)  # lower-case encoding names
    msid_stream: str | None = None
    simulcast: bool = False


def parse_sections(sdp: str) -> list[MediaSection]:
    """The m-sections of ``sdp``; raises ``BridgeError(bad_sdp)`` if it is not an SDP at all."""
    if not isinstance(sdp, str) or not sdp.strip():
        raise BridgeError(ErrorCode.BAD_SDP, "empty SDP")
    if len(sdp) > MAX_SDP_BYTES:
        raise BridgeError(ErrorCode.BAD_SDP, f"SDP of {len(sdp)} bytes is too large")
    lines = [line.strip() for line in sdp.splitlines() if line.strip()]
    if not lines or lines[0] != "v=0":
        raise BridgeError(ErrorCode.BAD_SDP, "SDP must start with v=0")
    sections: list[MediaSection] = []
    for line in lines[1:]:
        if len(line) < 2 or line[1] != "=":
            raise BridgeError(ErrorCode.BAD_SDP, f"malformed SDP line {line[:40]!r}")
        if line.startswith("m="):
            parts = line[2:].split()
            if len(parts) < 4 or not parts[1].isdigit():
                raise BridgeError(ErrorCode.BAD_SDP, f"malformed m-line {line[:60]!r}")
            sections.append(MediaSection(kind=parts[0], port=int(parts[1])))
            continue
        if not sections:
            continue
        section = sections[-1]
        if line.startswith("a=mid:"):
            section.mid = line[6:]
        elif line[2:] in DIRECTIONS:
            section.direction = line[2:]
        elif line.startswith("a=rtpmap:"):
            try:
                section.codecs.append(line.split(None, 1)[1].split("/")[0].lower())
            except IndexError:
                raise BridgeError(ErrorCode.BAD_SDP, f"malformed rtpmap {line[:60]!r}") from None
        elif line.startswith("a=msid:"):
            section.msid_stream = line[7:].split()[0] if line[7:].split() else None
        elif line.startswith(("a=simulcast", "a=rid:")):
            section.simulcast = True
    return sections


def check_publish_offer(sdp: str) -> list[MediaSection]:
    """Validate a participant's publish offer; return its audio/video sections."""
    sections = parse_sections(sdp)
    media = [s for s in sections if s.kind in REQUIRED_CODEC]
    if not media:
        raise BridgeError(ErrorCode.BAD_SDP, "the offer has no audio or video m-line")
    for s in media:
        if s.port == 0:
            continue  # rejected/stopped m-line
        if s.mid is None:
            raise BridgeError(ErrorCode.BAD_SDP, f"{s.kind} m-line without a=mid")
        wanted = REQUIRED_CODEC[s.kind]
        if wanted not in s.codecs:
            offered = ", ".join(sorted(set(s.codecs) - {"rtx", "red", "ulpfec"})) or "nothing"
            raise BridgeError(
                ErrorCode.UNSUPPORTED_CODEC,
                f"{s.kind} m-line {s.mid} offers {offered}; this bridge forwards only "
                f"{wanted.upper() if wanted == 'vp8' else 'Opus'}",
            )
        if s.simulcast:
            raise BridgeError(
                ErrorCode.UNSUPPORTED_CODEC,
                f"{s.kind} m-line {s.mid} asks for simulcast; send a single encoding",
            )
    return media
