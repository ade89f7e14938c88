"""MQTT credentials for edge devices: Mosquitto's password file and ACL file, kept in one directory.

Every device gets its own broker user ``{site}.{device}`` (``.`` is not allowed in site or device names, so
the user name is unambiguous) with a random password. The ACL lets a device publish only under its own
topic root ``fieldline/v1/{site}/{device}/`` (the contract's topics: status, events, alerts, stats,
snapshots/+, cmd/+/reply) and read only its own ``cmd/#``; the ``api`` user reads every
FieldLine topic and writes commands. Mosquitto re-reads both files on SIGHUP (``systemctl reload mosquitto``,
``docker compose kill -s HUP mosquitto``).

Passwords are hashed exactly as ``mosquitto_passwd`` does it (Mosquitto >= 2.0, ``$7$``): PBKDF2-HMAC-SHA512,
a 12-byte random salt, ``$7${iterations}${base64 salt}${base64 hash}``. The password file is the source of
truth for which devices exist; the ACL file is regenerated from it on every change (rules below the
``LOCAL_RULES_MARKER`` line are kept as they are).
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import os
import re
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from fieldline.contract import NAME_PATTERN, TOPIC_ROOT, device_root

PASSWORD_FILE = "passwd"
ACL_FILE = "acl"
LOCK_FILE = ".provisioning.lock"
API_USER = "api"
PBKDF2_ITERATIONS = 101  # what mosquitto_passwd 2.0 writes; the passwords are 192-bit random, not guessable
SALT_BYTES = 12
LOCAL_RULES_MARKER = "# ---- local rules: everything below this line is kept by `fieldline device` ----"
# what a device publishes under fieldline/v1/{site}/{device}/ (the wire contract); writing its own cmd/{name} is
# refused, so a device cannot inject commands
DEVICE_PUBLISH_SUFFIXES = ("status", "events", "alerts", "stats", "snapshots/+", "cmd/+/reply")
_NAME_RE = re.compile(NAME_PATTERN)
_USER_RE = re.compile(r"^[^:\s]+$")


class ProvisioningError(Exception):
    """A device cannot be added or removed (bad name, already there, not there)."""


@dataclass(frozen=True)
class MqttCredentials:
    """A broker login; ``password`` is the clear text, shown once and never stored."""

    username: str
    password: str


@dataclass(frozen=True)
class DeviceEntry:
    site: str
    device: str

    @property
    def username(self) -> str:
        return device_username(self.site, self.device)

    @property
    def topic_root(self) -> str:
        return device_root(self.site, self.device)


# ------------------------------------------------------------------ hashing


def hash_password(password: str, *, salt: bytes | None = None, iterations: int = PBKDF2_ITERATIONS) -> str:
    """The ``$7$`` PBKDF2-SHA512 hash Mosquitto >= 2.0 checks (same layout as ``mosquitto_passwd`` writes)."""
    if iterations < 1:
        raise ValueError("iterations must be >= 1")
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, encoded: str) -> bool:
    """Check a password against a Mosquitto hash: ``$7$`` (PBKDF2-SHA512) or the older ``$6$`` (salted SHA512)."""
    parts = encoded.split("$")
    try:
        if len(parts) == 5 and parts[1] == "7":
            iterations, salt, expected = int(parts[2]), base64.b64decode(parts[3]), base64.b64decode(parts[4])
            actual = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
        elif len(parts) == 4 and parts[1] == "6":
            salt, expected = base64.b64decode(parts[2]), base64.b64decode(parts[3])
            actual = hashlib.sha512(password.encode("utf-8") + salt).digest()
        else:
            return False
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


def new_password() -> str:
    """32 URL-safe characters (192 random bits): fine in YAML, shells and MQTT CONNECT packets."""
    return secrets.token_urlsafe(24)


def device_username(site: str, device: str) -> str:
    for value, what in ((site, "site"), (device, "device")):
        if not _NAME_RE.match(value):
            raise ProvisioningError(f"{what} {value!r} must match {NAME_PATTERN}")
    return f"{site}.{device}"


def parse_device_username(username: str) -> DeviceEntry | None:
    site, dot, device = username.partition(".")
    if dot and _NAME_RE.match(site) and _NAME_RE.match(device):
        return DeviceEntry(site, device)
    return None


# ------------------------------------------------------------------ ACL


def device_acl(entry: DeviceEntry) -> list[str]:
    root = entry.topic_root
    return [
        f"# device {entry.device} at site {entry.site}: publishes only its own contract topics",
        f"user {entry.username}",
        *(f"topic write {root}/{suffix}" for suffix in DEVICE_PUBLISH_SUFFIXES),
        f"topic read {root}/cmd/#",
    ]


def api_acl(api_user: str = API_USER) -> list[str]:
    return [
        "# the cloud API: reads everything devices publish, sends commands",
        f"user {api_user}",
        f"topic read {TOPIC_ROOT}/#",
        f"topic write {TOPIC_ROOT}/+/+/cmd/#",
    ]


def render_acl(devices: list[DeviceEntry], api_user: str = API_USER, local_rules: str = "") -> str:
    lines = [
        "# Mosquitto ACL written by `fieldline device add/remove`; edit only below the local-rules marker.",
        "# Users not listed here (and anonymous clients) may neither publish nor subscribe.",
        "",
        *api_acl(api_user),
        "",
    ]
    for entry in sorted(devices, key=lambda e: (e.site, e.device)):
        lines += [*device_acl(entry), ""]
    lines.append(LOCAL_RULES_MARKER)
    text = "\n".join(lines) + "\n"
    return text + local_rules if local_rules else text


# ------------------------------------------------------------------ files


class MosquittoAuthFiles:
    """The password file and ACL file of one broker, in ``directory`` (e.g. ``deploy/mosquitto``)."""

    def __init__(self, directory: Path, api_user: str = API_USER, iterations: int = PBKDF2_ITERATIONS) -> None:
        self.directory = Path(directory)
        self.password_file = self.directory / PASSWORD_FILE
        self.acl_file = self.directory / ACL_FILE
        self.api_user = api_user
        self.iterations = iterations

    # ---------------------------------------------------------- queries

    def users(self) -> dict[str, str]:
        """User name → hash, in file order."""
        return dict(self._read_passwords())

    def devices(self) -> list[DeviceEntry]:
        return sorted(
            (e for e in (parse_device_username(u) for u in self.users()) if e is not None),
            key=lambda e: (e.site, e.device),
        )

    def has_device(self, site: str, device: str) -> bool:
        return device_username(site, device) in self.users()

    # ---------------------------------------------------------- changes

    def add_device(self, site: str, device: str, *, rotate: bool = False) -> MqttCredentials:
        """Create (or with ``rotate`` replace) a device's credentials; returns the clear-text password once."""
        username = device_username(site, device)
        with self._locked():
            users = self._read_passwords()
            if username in dict(users) and not rotate:
                raise ProvisioningError(
                    f"device {device!r} at site {site!r} already has credentials (use --rotate for a new password)"
                )
            password = new_password()
            self._write_passwords(_set_user(users, username, hash_password(password, iterations=self.iterations)))
            self._write_acl()
        return MqttCredentials(username, password)

    def remove_device(self, site: str, device: str) -> None:
        username = device_username(site, device)
        with self._locked():
            users = self._read_passwords()
            if username not in dict(users):
                raise ProvisioningError(f"device {device!r} at site {site!r} has no credentials")
            self._write_passwords([(u, h) for u, h in users if u != username])
            self._write_acl()

    def ensure_api_user(self, *, rotate: bool = False) -> MqttCredentials | None:
        """Create the API's broker user if missing (or rotate it); None when it exists and is kept."""
        with self._locked():
            users = self._read_passwords()
            if self.api_user in dict(users) and not rotate:
                self._write_acl()
                return None
            password = new_password()
            self._write_passwords(_set_user(users, self.api_user, hash_password(password, iterations=self.iterations)))
            self._write_acl()
        return MqttCredentials(self.api_user, password)

    # ---------------------------------------------------------- internals

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / LOCK_FILE, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read_passwords(self) -> list[tuple[str, str]]:
        if not self.password_file.exists():
            return []
        users: list[tuple[str, str]] = []
        for number, line in enumerate(self.password_file.read_text().splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            username, colon, hashed = line.partition(":")
            if not colon or not _USER_RE.match(username):
                raise ProvisioningError(f"{self.password_file}:{number}: not a 'user:hash' line")
            users.append((username, hashed))
        return users

    def _write_passwords(self, users: list[tuple[str, str]]) -> None:
        _atomic_write(self.password_file, "".join(f"{u}:{h}\n" for u, h in users))

    def _write_acl(self) -> None:
        local = ""
        if self.acl_file.exists():
            text = self.acl_file.read_text()
            if LOCAL_RULES_MARKER in text:
                local = text.split(LOCAL_RULES_MARKER, 1)[1].lstrip("\n")
        entries = [e for e in (parse_device_username(u) for u, _ in self._read_passwords()) if e is not None]
        _atomic_write(self.acl_file, render_acl(entries, self.api_user, local))


def _set_user(users: list[tuple[str, str]], username: str, hashed: str) -> list[tuple[str, str]]:
    if any(u == username for u, _ in users):
        return [(u, hashed if u == username else h) for u, h in users]
    return [*users, (username, hashed)]


def _atomic_write(path: Path, text: str, mode: int = 0o640) -> None:
    """Write via a temp file and rename, so Mosquitto never reads half a file.

    Keeps the owner/group/mode of an existing file (e.g. ``root:mosquitto 0640``); mount the directory,
    not the single files, into a container: a rename replaces the inode a file bind mount points to.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        if path.exists():
            st = path.stat()
            os.chmod(tmp, st.st_mode & 0o777)
            try:
                os.chown(tmp, st.st_uid, st.st_gid)
            except PermissionError:
                pass
        else:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def edge_mqtt_snippet(credentials: MqttCredentials, host: str, port: int = 8883, ca_file: str | None = None) -> str:
    """The ``mqtt:`` block of the edge agent's YAML for these credentials."""
    lines = [
        "mqtt:",
        f"  host: {host}",
        f"  port: {port}",
        f"  username: {credentials.username}",
        f'  password: "{credentials.password}"',
    ]
    if ca_file:
        lines += ["  tls:", f"    ca_file: {ca_file}"]
    return "\n".join(lines) + "\n"


def api_mqtt_snippet(credentials: MqttCredentials) -> str:
    """The MQTT keys of the API's YAML for the ``api`` broker user."""
    return f"mqtt_username: {credentials.username}\nmqtt_password: \"{credentials.password}\"\n"
