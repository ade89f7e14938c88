"""Coarse classes of dead-letter reasons, for metrics (the full reason text stays in the dead_letters table)."""

from __future__ import annotations

REASON_CLASSES = (
    "too_large", "not_utf8", "not_json", "schema_version", "topic", "origin", "snapshot", "internal", "validation",
)


def reason_class(reason: str) -> str:
    """Map a dead-letter reason (as written by ``MessageClassifier``) to one of ``REASON_CLASSES``."""
    if reason.startswith("internal error"):
        return "internal"
    if reason.startswith(("payload is not UTF-8",)):
        return "not_utf8"
    if reason.startswith(("payload is not JSON", "payload must be a JSON object")):
        return "not_json"
    if (reason.startswith(("payload is ", "snapshot is ")) and " bytes, the limit is " in reason):
        return "too_large"
    if reason.startswith("snapshot"):
        return "snapshot"
    if reason.startswith("topic "):
        return "topic"
    if "payload says" in reason:
        return "origin"
    if reason.startswith("schema") or "unsupported schema" in reason:
        return "schema_version"
    return "validation"
