"""Log formatters: one JSON object per line (production), or plain text with the structured part appended.

Structured data travels in `extra={"cb": {...}}` so both formats carry it; secrets never go into it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import orjson


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
                 "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        structured = getattr(record, "cb", None)
        if isinstance(structured, dict):
            entry.update(structured)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class PlainFormatter(logging.Formatter):
    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        structured = getattr(record, "cb", None)
        if isinstance(structured, dict):
            text += " " + orjson.dumps(structured, default=str).decode()
        return text
