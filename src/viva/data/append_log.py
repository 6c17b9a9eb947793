"""Append-only JSONL files written one whole line at a time: a crash loses at most the line being written.

Each record is one ``os.write`` of a complete line on an ``O_APPEND`` descriptor, then ``fsync``: readers never see
half a record unless the machine died inside that write, and ``repair`` drops such a torn last line before the next
run appends (its record was never acknowledged, so the rerun redoes it).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Iterator

log = logging.getLogger(__name__)


class AppendLog:
    """One JSONL file that only grows; ``append`` is durable when it returns."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def repair(self) -> int:
        """Truncate a torn last line (no trailing newline); returns the bytes dropped (0 when the file is whole)."""
        if not self.path.is_file() or self.path.stat().st_size == 0:
            return 0
        with self.path.open("rb+") as f:
            data = f.read()
            if data.endswith(b"\n"):
                return 0
            keep = data.rfind(b"\n") + 1
            f.truncate(keep)
            f.flush()
            os.fsync(f.fileno())
        dropped = len(data) - keep
        log.warning("%s: dropped a torn last line of %d bytes (an interrupted write; it is redone)", self.path, dropped)
        return dropped

    def append(self, record: dict) -> None:
        """Write ``record`` as one JSON line and fsync it."""
        data = (json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            view = memoryview(data)
            while view:  # a regular file takes the whole line in one write; loop only for the pathological case
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)

    def records(self) -> Iterator[dict]:
        """Every complete line that parses as a JSON object; others are logged with their line number and skipped."""
        if not self.path.is_file():
            return
        with self.path.open(encoding="utf-8", errors="replace") as f:
            for n, text in enumerate(f, start=1):
                if not text.strip() or not text.endswith("\n"):
                    continue
                try:
                    obj = json.loads(text)
                except json.JSONDecodeError as e:
                    log.warning("%s: line %d is not JSON (%s); ignored", self.path, n, e)
                    continue
                if isinstance(obj, dict):
                    yield obj
                else:
                    log.warning("%s: line %d is not a JSON object; ignored", self.path, n)

    def ids(self, key: str = "id") -> set[str]:
        """The ``key`` values of every record that has a string one."""
        return {r[key] for r in self.records() if isinstance(r.get(key), str)}
