"""Routing changes without dropping anyone: PUT /api/v1/routing and SIGHUP."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import aiohttp

from .conftest import free_port


async def test_put_routing_swaps_policy_and_refuses_bad_tables(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster = await cluster_factory(bridges=1)
    url = f"{cluster.url}/api/v1/routing"
    async with aiohttp.ClientSession() as http:
        assert (await (await http.get(url)).json())["policy"] == "balanced"
        ok = await http.put(url, json={"policy": "power_of_d", "params": {"d": 2}})
        assert ok.status == 200 and (await ok.json())["policy"] == "power_of_d"
        bad = await http.put(url, json={"policy": "nope"})
        assert bad.status == 400 and "known policies" in (await bad.json())["error"]
        assert (await (await http.get(url)).json())["policy"] == "power_of_d"
    assert cluster.router.policy.name == "power_of_d"


async def until(read, expected: str, process, limit_s: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    """Poll ``read()`` until it returns ``expected``; fail early if the server exited."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while await read() != expected:
        if process.returncode is not None:
            err = (await process.stderr.read()).decode(errors="replace")[-2000:]
            raise AssertionError(f"the balancer exited with {process.returncode}: {err}")
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {limit_s:.0f} s waiting for {expected!r}")
        await asyncio.sleep(0.05)


async def test_sighup_reloads_routing_from_the_config_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    config = tmp_path / "sfu-balancer.toml"
    config.write_text(f'port = {port}\nadmin_token = "t"\n[routing]\npolicy = "random"\n')
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sfu_balancer", "serve", "--config", str(config),
        stderr=asyncio.subprocess.PIPE, start_new_session=True)
    url = f"http://127.0.0.1:{port}/api/v1/routing"
    headers = {"Authorization": "Bearer t"}
    seen: dict[str, str] = {}

    async def policy(http: aiohttp.ClientSession) -> str:
        try:
            seen["policy"] = (await (await http.get(url, headers=headers)).json())["policy"]
        except aiohttp.ClientError:
            seen["policy"] = ""
        return seen["policy"]

    try:
        async with aiohttp.ClientSession() as http:
            await until(lambda: policy(http), "random", process)
            config.write_text(f'port = {port}\nadmin_token = "t"\n[routing]\n'
                              'policy = "least_loaded"\n')
            os.kill(process.pid, signal.SIGHUP)
            await until(lambda: policy(http), "least_loaded", process)
            config.write_text(f'port = {port}\n[routing]\npolicy = "bogus"\n')
            os.kill(process.pid, signal.SIGHUP)
            assert await policy(http) == "least_loaded"  # a bad file changes nothing
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode == 0
    assert b"keeping the current routing" in err and b"known policies" in err


async def test_sighup_without_a_config_file_reloads_the_address_lists(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from pathlib import Path

    port = free_port()
    block = tmp_path / "block.txt"
    block.write_text("10.0.0.0/8\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SFUB_")}
    env |= {"SFUB_ADMIN_TOKEN": "t", "SFUB_LIMITS__BLOCK_CIDRS_FILE": str(block)}
    serve = Path(sys.executable).with_name("sfu-balancer")  # the installed console script
    process = await asyncio.create_subprocess_exec(
        str(serve), "serve", "--port", str(port), env=env,
        stderr=asyncio.subprocess.PIPE, start_new_session=True)
    base = f"http://127.0.0.1:{port}"

    async def status(http: aiohttp.ClientSession, path: str) -> str:
        try:
            return str((await http.get(f"{base}{path}")).status)
        except aiohttp.ClientError:
            return ""

    try:
        async with aiohttp.ClientSession() as http:
            await until(lambda: status(http, "/healthz"), "200", process)
            assert await status(http, "/ws") == "400"  # not blocked (a GET without upgrade)
            block.write_text("127.0.0.0/8\n")
            os.kill(process.pid, signal.SIGHUP)
            await until(lambda: status(http, "/ws"), "403", process)  # the list was reloaded
            block.write_text("not a network\n")
            os.kill(process.pid, signal.SIGHUP)
            await until(lambda: status(http, "/healthz"), "200", process)
            assert process.returncode is None  # SIGHUP never stops the server
            assert await status(http, "/ws") == "403"  # a bad file keeps the current lists
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode == 0, err.decode(errors="replace")[-2000:]
    assert b"keeping the current address lists" in err
