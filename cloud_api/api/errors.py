"""Error bodies as the OpenAPI document describes them.

FastAPI documents every 422 as ``HTTPValidationError`` (``detail`` is a list), but routes that reject a
request after validation (``from`` after ``to``, a password that is too weak) answer ``{"detail": "text"}``.
``UNPROCESSABLE`` documents both shapes, so clients and schema checks see what is really sent.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

# SQLite INTEGER is a signed 64-bit value; bigger epoch-ms query values would raise OverflowError (HTTP 500)
MAX_EPOCH_MS = 2**63 - 1


class ValidationErrorItemOut(BaseModel):
    loc: list[str | int] = Field(description="Where the error is, e.g. ['query', 'from']")
    msg: str = Field(description="What is wrong")
    type: str = Field(description="Error type, e.g. value_error")


class UnprocessableOut(BaseModel):
    detail: str | list[ValidationErrorItemOut] = Field(
        description="A message, or one item per invalid field when the request does not match the schema"
    )


UNPROCESSABLE: dict[int | str, dict[str, Any]] = {
    422: {"model": UnprocessableOut, "description": "Invalid request: schema errors (a list) or a message"}
}
