"""JSON logs, one object a line, with personal data masked.

Prompts and transcripts never go into a log record unless `log_prompts` is on; user ids
go in as keyed hashes (megacity.observability.anonymize). As a second line of defence
the formatter runs every message, string field and traceback through the PII masker, so
a phone number or an email that slips into an exception message is logged as [PHONE_1].
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import Any

import orjson

_STANDARD = set(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}


class JSONFormatter(logging.Formatter):
    """Formats a record and its `extra` fields as one JSON object; `redact` masks PII."""

    def __init__(self, redact: Callable[[str], str] | None = None) -> None:
        super().__init__()
        self._redact = redact or (lambda text: text)

    def format(self, record: logging.LogRecord) -> str:
        redact = self._redact
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = _redacted(value, redact)
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        return orjson.dumps(entry, default=str).decode()


def _redacted(value: Any, redact: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list | tuple):
        return [_redacted(v, redact) for v in value]
    if isinstance(value, dict):
        return {k: _redacted(v, redact) for k, v in value.items()}
    return value


def configure_logging(level: str = "INFO", *, mask_pii: bool = True) -> None:
    """Send JSON lines to stderr for the megacity and uvicorn loggers, PII masked."""
    redact = None
    if mask_pii:
        from megacity.safety.pii import PIIMasker

        redact = PIIMasker().redact
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter(redact))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("faster_whisper").setLevel(logging.WARNING)  # a line per transcription
    logging.Formatter.converter = time.gmtime
