"""Log format: JSON lines outside dev (stdlib records included), console lines in dev."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from sfu_balancer.service.logs import configure


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers, root.level = handlers, level
    structlog.reset_defaults()


def test_outside_dev_every_line_is_json(restored_logging: None,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    configure("auto", "INFO", dev=False)
    structlog.get_logger("sfu_balancer.test").info("joined", room="r1")
    logging.getLogger("aiohttp.access").info("GET /healthz 200")
    logging.getLogger("aiohttp.access").debug("below the level: not written")
    lines = capsys.readouterr().err.strip().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["event"] for r in records] == ["joined", "GET /healthz 200"]
    assert records[0]["room"] == "r1" and records[0]["level"] == "info"
    assert records[1]["logger"] == "aiohttp.access" and "timestamp" in records[1]


def test_dev_writes_console_lines(restored_logging: None,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    configure("auto", "INFO", dev=True)
    structlog.get_logger().warning("bridge_failed", bridge="b1")
    line = capsys.readouterr().err.strip()
    assert "bridge_failed" in line and "bridge=b1" in line
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


def test_bad_format_and_level_are_refused(restored_logging: None) -> None:
    with pytest.raises(ValueError, match="log_format"):
        configure("xml", "INFO", dev=False)
    with pytest.raises(ValueError, match="log level"):
        configure("json", "LOUD", dev=False)
