"""Keep WebSocket tokens (``/api/v1/ws?token=...``) out of the server logs."""

from __future__ import annotations

import logging
import re
from typing import Any

_TOKEN_IN_QUERY = re.compile(r"([?&]token=)[^&\s\"']+")
SERVER_LOGGERS = ("uvicorn.error", "uvicorn.access")


def redact(value: Any) -> Any:
    return _TOKEN_IN_QUERY.sub(r"\1<redacted>", value) if isinstance(value, str) else value


class RedactQueryTokens(logging.Filter):
    """Replaces the value of ``token=`` query parameters in a record's message and arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {key: redact(arg) for key, arg in record.args.items()}
        return True


def install(logger_names: tuple[str, ...] = SERVER_LOGGERS) -> None:
    """Add the filter to the server loggers once (idempotent)."""
    for name in logger_names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactQueryTokens) for f in logger.filters):
            logger.addFilter(RedactQueryTokens())
