"""Fuzz /ws with generated messages over a real WebSocket: no crash, no hang, and every bad
input answered with an error (a smaller run than bench/fuzz.py)."""

from __future__ import annotations

import json

import aiohttp
from hypothesis import HealthCheck, given, settings

from .ws_fuzz import expected_reply_type, messages


def generate(count: int) -> list[str]:
    found: list[str] = []

    @settings(max_examples=count, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(messages)
    def collect(raw: str) -> None:
        found.append(raw)

    collect()
    return found


async def test_generated_ws_messages_are_each_answered(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster = await cluster_factory(bridges=0, limits={"ws_messages_per_s": 0,
                                                       "joins_per_ip_per_min": 0,
                                                       "connections_per_ip_per_min": 0})
    inputs = generate(400)
    async with aiohttp.ClientSession() as http, http.ws_connect(f"{cluster.url}/ws") as ws:
        for raw in inputs:
            await ws.send_str(raw)
            reply = json.loads((await ws.receive(timeout=10)).data)  # a hang fails here
            assert reply["type"] == expected_reply_type(raw), (raw, reply)
            if reply["type"] == "error":
                assert reply["code"] != "internal", (raw, reply)
                assert isinstance(reply["message"], str) and reply["message"]
        await ws.send_str(json.dumps({"type": "ping"}))
        assert json.loads((await ws.receive(timeout=10)).data) == {"type": "pong"}
    assert len(inputs) >= 300
