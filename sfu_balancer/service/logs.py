"""structlog set-up: readable console lines in dev, one JSON object per line otherwise.

``auto`` means console in dev mode and JSON everywhere else (a terminal included), so what an
operator pipes into a log collector never changes shape with how the process was started.
Standard-library records (aiohttp's access log, the bridges' loggers, warnings from
dependencies) go through the same renderer, so a JSON deployment emits only JSON lines.
"""

from __future__ import annotations

import logging
import sys

import structlog


def configure(log_format: str, level: str, dev: bool) -> None:
    if log_format == "auto":
        log_format = "console" if dev else "json"
    if log_format not in ("console", "json"):
        raise ValueError(f"log_format must be auto, console or json, got {log_format!r}")
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
        if log_format == "console" else structlog.processors.JSONRenderer()
    )
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    stamp = structlog.processors.TimeStamper(fmt="iso", utc=True)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            stamp,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_log_level, structlog.stdlib.add_logger_name,
                           stamp],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    ))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(numeric)
