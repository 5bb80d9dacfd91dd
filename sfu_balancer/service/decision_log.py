"""Append-only JSONL decision log: one line per routing decision, flushed per line, so a
crash loses at most the line being written. ``sfu-sim replay FILE`` re-runs every line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TextIO


class DecisionLog:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._file: TextIO | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("a", encoding="utf-8")

    @property
    def enabled(self) -> bool:
        return self._file is not None

    def write(self, record: dict[str, Any]) -> None:
        if self._file is None:
            return
        self._file.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
