"""/ws bad input, admin API, health and metrics against a live balancer with real bridges."""

from __future__ import annotations

import json

import aiohttp
import pytest
from media_clients import wait_for

from sfu_balancer.core.record import replay


async def _ws_exchange(url: str, frames: list[str | bytes]) -> list[dict]:  # type: ignore[type-arg]
    replies = []
    async with aiohttp.ClientSession() as session, session.ws_connect(f"{url}/ws") as ws:
        for frame in frames:
            if isinstance(frame, bytes):
                await ws.send_bytes(frame)
            else:
                await ws.send_str(frame)
            replies.append(json.loads((await ws.receive(timeout=10)).data))
        await ws.send_str(json.dumps({"type": "ping"}))
        replies.append(json.loads((await ws.receive(timeout=10)).data))
    return replies


async def test_bad_messages_get_errors_and_the_socket_survives(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster = await cluster_factory(bridges=1)
    frames: list[str | bytes] = [
        "not json",
        "[1, 2]",
        json.dumps({"type": "fly"}),
        json.dumps({"type": "join", "room": "ok"}),
        json.dumps({"type": "join", "room": "../etc", "sdp": "v=0"}),
        json.dumps({"type": "join", "room": "ok", "sdp": "hello"}),
        json.dumps({"type": "answer", "sdp": "v=0", "seq": 1}),
        json.dumps({"type": "join", "room": "ok", "sdp": "v=0\r\n", "participant": "a b"}),
        b"\x00\x01",
        json.dumps({"type": "join", "room": "ok", "sdp": "v=0\r\nnot really sdp\r\n"}),
        '{"type": "ping", "n": NaN}',  # not JSON (RFC 8259), though Python's json takes it
        "[" * 5000,  # deeper than any parser's limit: refused, never a crash
    ]
    replies = await _ws_exchange(cluster.url, frames)
    assert [r["type"] for r in replies[:-1]] == ["error"] * len(frames)
    assert all(r["code"] == "bad_request" and r["message"] for r in replies[:-1])
    assert "unknown message type" in replies[2]["message"]
    assert "'sdp'" in replies[3]["message"]
    assert (replies[0]["about"], replies[2]["about"], replies[3]["about"]) == ("", "fly", "join")
    assert replies[-1] == {"type": "pong"}
    # the malformed SDP reached the bridge, which refused it; nobody was left behind
    assert await cluster.router.store.rooms() == {}


async def test_oversized_message_is_refused(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    limit = 2048
    cluster = await cluster_factory(bridges=1, max_message_bytes=limit)
    big = json.dumps({"type": "join", "room": "r", "sdp": "v=0" + "x" * 4096})
    # fewer characters than the limit, more bytes: the limit is on UTF-8 bytes
    wide = json.dumps({"type": "ping", "pad": "\u00e9" * 1500}, ensure_ascii=False)
    assert len(wide) < limit < len(wide.encode())
    refused = [big, wide]
    async with aiohttp.ClientSession() as session, session.ws_connect(f"{cluster.url}/ws") as ws:
        for message in refused:
            await ws.send_str(message)
            reply = await ws.receive(timeout=10)
            assert reply.type == aiohttp.WSMsgType.TEXT, reply  # an error frame, not a close
            error = json.loads(reply.data)
            assert (error["type"], error["code"], error["fatal"]) == ("error", "too_large", False)
        assert error["about"] == "ping"
        # just under the limit is fine, and the socket still serves
        await ws.send_str(json.dumps({"type": "ping", "pad": "x" * (limit - 40)}))
        assert json.loads((await ws.receive(timeout=10)).data) == {"type": "pong"}
    metrics = cluster.router.metrics
    assert metrics.refusals.labels("too_large")._value.get() == len(refused)
    assert metrics.ws_errors.labels("too_large")._value.get() == len(refused)
    async with aiohttp.ClientSession() as http:
        text = await (await http.get(f"{cluster.url}/metrics")).text()
    assert f'sfub_refusals_total{{code="too_large"}} {float(len(refused))}' in text


async def test_admin_api_health_and_metrics(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster = await cluster_factory(bridges=2)
    async with aiohttp.ClientSession() as http:
        bridges = (await (await http.get(f"{cluster.url}/api/v1/bridges")).json())["bridges"]
        assert {b["id"] for b in bridges} == {"b1", "b2"}
        for b in bridges:
            assert {"id", "host", "region", "state", "pid", "load", "stress"} <= set(b)
            assert b["pid"] == cluster.bridges[b["id"]].pid
            assert b["load"]["age_s"] >= 0
        assert (await http.get(f"{cluster.url}/healthz")).status == 200
        assert (await http.get(f"{cluster.url}/readyz")).status == 200
        bad = await http.post(f"{cluster.url}/api/v1/bridges/b1/drain", json={"deadline_s": -1})
        assert bad.status == 400 and "deadline_s" in (await bad.json())["error"]
        missing = await http.post(f"{cluster.url}/api/v1/bridges/nope/drain",
                                  json={"deadline_s": 5})
        assert missing.status == 404
        drained = await http.post(f"{cluster.url}/api/v1/bridges/b1/drain",
                                  json={"deadline_s": 30})
        body = await drained.json()
        assert drained.status == 200 and body["state"] == "draining"
        assert 0 < body["drain_deadline_s"] <= 30
        undrained = await http.post(f"{cluster.url}/api/v1/bridges/b1/undrain")
        assert (await undrained.json())["state"] == "serving"
        metrics = await (await http.get(f"{cluster.url}/metrics")).text()
        assert "sfub_bridge_serving" in metrics and "sfub_decisions" in metrics


async def test_stress_gauge_is_the_cores_stress_and_joins_are_timed(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    from ..redis.cluster import FAKE_OFFER

    cluster = await cluster_factory(bridges=0)
    # 0.4 cores of 1, at the default 0.8 CPU threshold: stress 0.5 (not 0.4, the raw CPU)
    fake = await cluster.add_fake_bridge("f1", capacity_cpu=1.0)
    fake.skew[cluster.url] = 0.4
    gauge = cluster.router.metrics.bridge_stress.labels("f1")
    await wait_for(lambda: abs(gauge._value.get() - 0.5) < 1e-9, 10, "a report at 0.4 CPU")
    async with aiohttp.ClientSession() as http:
        bridges = (await (await http.get(f"{cluster.url}/api/v1/bridges")).json())["bridges"]
        assert bridges[0]["stress"] == 0.5  # the dashboard and /metrics agree
        async with http.ws_connect(f"{cluster.url}/ws") as ws:
            await ws.send_str(json.dumps({"type": "join", "room": "timed", "sdp": FAKE_OFFER}))
            assert json.loads((await ws.receive(timeout=10)).data)["type"] == "joined"
            await ws.send_str(json.dumps({"type": "join", "room": "bad name!", "sdp": "v=0"}))
            assert json.loads((await ws.receive(timeout=10)).data)["type"] == "error"
        text = await (await http.get(f"{cluster.url}/metrics")).text()
    assert 'sfub_bridge_stress{bridge="f1"} 0.5' in text
    assert "sfub_join_seconds_count 1.0" in text  # the join placed; not the refused one
    assert cluster.router.metrics.join_seconds._sum.get() > 0


async def test_admin_api_needs_token_outside_dev(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster = await cluster_factory(bridges=1, dev=False, admin_token="s3cret",
                                    bridge_secret="bridge-secret-0123456789")
    async with aiohttp.ClientSession() as http:
        assert (await http.get(f"{cluster.url}/api/v1/bridges")).status == 401
        wrong = {"Authorization": "Bearer nope"}
        assert (await http.get(f"{cluster.url}/api/v1/rooms", headers=wrong)).status == 401
        right = {"Authorization": "Bearer s3cret"}
        assert (await http.get(f"{cluster.url}/api/v1/rooms", headers=right)).status == 200
        assert (await http.get(f"{cluster.url}/healthz")).status == 200


@pytest.mark.slow
async def test_decision_log_replays_identically(cluster_factory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    log_path = tmp_path / "decisions.jsonl"
    cluster = await cluster_factory(bridges=2, decision_log=log_path,
                                    routing={"policy": "balanced", "max_per_bridge": 2})
    members = [await cluster.participant(room) for room in ("a", "a", "a", "b", "c")]
    await wait_for(lambda: all(m.bridge for m in members), 60, "all joins to be placed")
    lines = log_path.read_text().splitlines()
    assert len(lines) == 5
    records = [json.loads(line) for line in lines]
    reasons = {r["decision"]["reason"] for r in records}
    assert {"new_room", "sticky", "split_cap"} <= reasons
    for record in records:
        decision, same = replay(record)
        assert same, (record["decision"], decision)
    # a tampered record is detected, not silently accepted
    tampered = dict(records[0], decision=dict(records[0]["decision"], bridge="elsewhere"))
    assert replay(tampered)[1] is False


@pytest.mark.slow
async def test_sfu_sim_replay_command_reads_the_live_log(cluster_factory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import asyncio
    import sys

    log_path = tmp_path / "decisions.jsonl"
    cluster = await cluster_factory(bridges=2, decision_log=log_path,
                                    routing={"policy": "round_robin"})
    members = [await cluster.participant(room) for room in ("x", "y", "z")]
    await wait_for(lambda: all(m.bridge for m in members), 60, "all joins to be placed")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulations.cli", "replay", str(log_path),
        stdout=asyncio.subprocess.PIPE)
    out, _ = await process.communicate()
    assert process.returncode == 0, out
    assert "3 decisions replayed, 3 identical, 0 differ" in out.decode()
    lines = log_path.read_text().splitlines()
    broken = json.loads(lines[1])
    broken["decision"]["bridge"] = "nowhere"
    log_path.write_text("\n".join([lines[0], json.dumps(broken), lines[2]]) + "\n")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulations.cli", "replay", str(log_path),
        stdout=asyncio.subprocess.PIPE)
    out, _ = await process.communicate()
    assert process.returncode == 1 and "1 differ" in out.decode()
