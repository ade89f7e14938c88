"""A small ``multipart/form-data`` reader for model uploads (the body is already in memory and bounded).

FastAPI's form support needs the ``python-multipart`` package; the registry needs only named fields and one
file, so this reads them directly: split at the boundary, take each part's ``Content-Disposition`` name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PARAM_RE = re.compile(r';\s*([A-Za-z0-9_*-]+)="?([^";]*)"?')


class MultipartError(ValueError):
    """The body is not well-formed multipart/form-data; the message says what is wrong."""


@dataclass(frozen=True)
class Part:
    name: str
    filename: str | None
    data: bytes

    def text(self) -> str:
        try:
            return self.data.decode("utf-8")
        except UnicodeDecodeError:
            raise MultipartError(f"form field {self.name!r} is not UTF-8 text") from None


def boundary_of(content_type: str) -> str:
    params = dict((k.lower(), v) for k, v in _PARAM_RE.findall(content_type))
    boundary = params.get("boundary")
    if not boundary or len(boundary) > 200:
        raise MultipartError("multipart/form-data without a boundary in the Content-Type header")
    return boundary


def parse_form(body: bytes, content_type: str) -> dict[str, Part]:
    """Parts by field name (the last one wins when a name repeats)."""
    delimiter = b"--" + boundary_of(content_type).encode("latin-1")
    if not body.startswith(delimiter):
        body = b"\r\n" + body  # a preamble before the first boundary is allowed and ignored
        start = body.find(b"\r\n" + delimiter)
        if start < 0:
            raise MultipartError("multipart body does not contain its boundary")
        body = body[start + 2:]
    parts: dict[str, Part] = {}
    chunks = body.split(b"\r\n" + delimiter)
    first = chunks[0][len(delimiter):]
    for chunk in [first, *chunks[1:]]:
        if chunk.startswith(b"--"):
            return parts  # the closing delimiter
        if not chunk.startswith(b"\r\n"):
            raise MultipartError("multipart boundary not followed by a line break")
        head, sep, data = chunk[2:].partition(b"\r\n\r\n")
        if not sep:
            raise MultipartError("multipart part without a blank line after its headers")
        part = _part(head.decode("latin-1"), data)
        parts[part.name] = part
    raise MultipartError("multipart body ends without its closing boundary (truncated upload?)")


def _part(head: str, data: bytes) -> Part:
    for line in head.split("\r\n"):
        key, _, value = line.partition(":")
        if key.strip().lower() == "content-disposition":
            params = dict((k.lower(), v) for k, v in _PARAM_RE.findall(value))
            if "name" not in params:
                break
            return Part(name=params["name"], filename=params.get("filename"), data=data)
    raise MultipartError("multipart part without a Content-Disposition name")
