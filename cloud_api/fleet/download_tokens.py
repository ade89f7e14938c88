"""Model download tokens: short-lived, bound to one device and one file, signed by the API.

A model command carries ``args.url`` (``/api/v1/models/{sha256}/file`` on this API), ``args.sha256`` and
``args.token``; the agent sends the token as ``Authorization: Bearer``. The token is
``fldl1.{site}.{device}.{sha256}.{expires_ms}.{signature}`` where the signature is HMAC-SHA256 over the
fields before it with a 32-byte key kept in the API database (``fleet_keys``, shared by every API worker).

Why this scheme: the token reaches the device only over its own command topic, which the broker's ACL lets
no other device read (``cloud_api.services.devices_provisioning``); it opens exactly one file, for one
device, until it expires (the command's deadline plus ``DOWNLOAD_GRACE_MS``); a leaked token cannot list
or fetch anything else, and nothing needs to be provisioned on the device besides its broker login. The
device is named in the token, so every download is audited against it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from fieldline.contract import NAME_PATTERN

PREFIX = "fldl1"
KEY_NAME = "model-download"
DOWNLOAD_GRACE_MS = 15 * 60 * 1000  # a download started just before the deadline may still finish
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
_NAME_RE = re.compile(NAME_PATTERN)


class TokenError(ValueError):
    """A download token that does not open this file; the message says why (never echoes the token)."""


@dataclass(frozen=True)
class DownloadGrant:
    site: str
    device: str
    sha256: str
    expires_ms: int


def _sign(key: bytes, body: str) -> str:
    return hmac.new(key, body.encode("ascii"), hashlib.sha256).hexdigest()


def issue(key: bytes, site: str, device: str, sha256: str, expires_ms: int) -> str:
    body = f"{PREFIX}.{site}.{device}.{sha256}.{expires_ms}"
    return f"{body}.{_sign(key, body)}"


def verify(key: bytes, token: str, sha256: str, now_ms: int) -> DownloadGrant:
    """The grant in ``token`` when it is genuine, unexpired and for this file; else :class:`TokenError`."""
    parts = token.split(".")
    if len(parts) != 6 or parts[0] != PREFIX:
        raise TokenError("not a model download token (get one with a model command to the device)")
    _, site, device, token_sha, expires, signature = parts
    if not (_NAME_RE.match(site) and _NAME_RE.match(device) and _SHA_RE.match(token_sha) and expires.isdigit()):
        raise TokenError("malformed model download token")
    if not hmac.compare_digest(_sign(key, ".".join(parts[:5])), signature):
        raise TokenError("model download token has a bad signature (not issued by this API)")
    if token_sha != sha256:
        raise TokenError("model download token is for another file")
    if int(expires) <= now_ms:
        raise TokenError("model download token expired; send the model command again")
    return DownloadGrant(site=site, device=device, sha256=token_sha, expires_ms=int(expires))
