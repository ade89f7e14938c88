"""Event identity on ingest: true duplicates, id collisions, device installs and the per-device seq audit.

The event id is the idempotency key, but agents older than schema 1.1 built it as ``{device}-{boot}-{seq}``,
which repeats for a different event when a device name is reused at another site or a data folder is wiped.
So a stored id is a duplicate only when the content matches too (everything but ``historical``, which a
replay from the spool sets). A known id with other content is a collision: the event is stored under a
derived id ``{id}~{sha256[:12]}`` (so a redelivery of it is again a duplicate), recorded in
``id_collisions`` and raised as an ``id_collision`` alert. Nothing is dropped silently.

Agents of schema 1.1 put a random ``instance`` id (made when their spool is created) in every id and event:
``device_instances`` keeps one row per (site, device, instance), which is what the seq audit keys on.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from fieldline.contract import Alert, Event

from cloud_api.storage.records import DeviceAudit, InstanceAudit, SeqRange

_CHUNK = 500  # ids per IN (...) lookup, well under SQLite's variable limit
LEGACY_INSTANCE = ""  # what schema 1.0 events (no instance field) are filed under

DDL = """
CREATE TABLE IF NOT EXISTS device_instances (
    site TEXT NOT NULL,
    device TEXT NOT NULL,
    instance TEXT NOT NULL,
    first_seen_ms INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL,
    repeats INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (site, device, instance)
);
CREATE TABLE IF NOT EXISTS id_collisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    stored_as TEXT NOT NULL,
    site TEXT NOT NULL,
    device TEXT NOT NULL,
    first_site TEXT NOT NULL,
    first_device TEXT NOT NULL,
    received_ms INTEGER NOT NULL
);
"""


class EventsWritten(int):
    """How many events a batch stored (an int, as before), with how many of them were id collisions."""

    collisions: int = 0
    repeats: int = 0

    def __new__(cls, stored: int, collisions: int = 0, repeats: int = 0) -> EventsWritten:
        value = super().__new__(cls, stored)
        value.collisions = collisions
        value.repeats = repeats
        return value


@dataclass(frozen=True)
class Collision:
    event: Event  # as stored, under its derived id
    original_id: str
    first: Event  # the event that holds the original id


@dataclass
class Resolved:
    fresh: list[tuple[Event, bytes | None]]  # to insert, in batch order (collided ones renamed)
    collisions: list[Collision]
    repeats: list[Event]  # true duplicates (same id, same content)


def _content(event: Event) -> dict:
    return event.model_dump(mode="json", by_alias=True, exclude={"historical"})


def derived_id(event: Event) -> str:
    digest = hashlib.sha256(json.dumps(_content(event), sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return f"{event.id}~{digest[:12]}"


def _stored_payloads(conn: sqlite3.Connection, ids: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for i in range(0, len(ids), _CHUNK):
        chunk = ids[i:i + _CHUNK]
        marks = ",".join("?" * len(chunk))
        found.update(conn.execute(f"SELECT id, payload FROM events WHERE id IN ({marks})", chunk).fetchall())
    return found


def resolve(conn: sqlite3.Connection, events: Sequence[Event],
            payloads: Sequence[bytes | None] | None = None) -> Resolved:
    """Split a batch into new events, true duplicates and collisions (renamed); reads only, in batch order.

    Stored payloads are read only for ids already stored, so a batch of new events costs one id lookup.
    """
    pairs = list(zip(events, payloads or [None] * len(events), strict=True))
    stored = _stored_payloads(conn, list(dict.fromkeys(e.id for e in events)))
    held: dict[str, Event] = {}  # id -> the event holding it (stored before, or earlier in this batch)
    result = Resolved([], [], [])
    for event, payload in pairs:
        first = held.get(event.id)
        if first is None and event.id in stored:
            first = held[event.id] = Event.model_validate_json(stored[event.id])
        if first is None:
            held[event.id] = event
            result.fresh.append((event, payload))
        elif _content(first) == _content(event):
            result.repeats.append(event)
        else:
            new_id = derived_id(event)
            if new_id in held or _stored_payloads(conn, [new_id]):
                result.repeats.append(event)  # the collided event delivered again
                continue
            renamed = event.model_copy(update={"id": new_id})
            held[new_id] = renamed
            result.fresh.append((renamed, _renamed_payload(payload, event, new_id)))
            result.collisions.append(Collision(renamed, event.id, first))
    return result


def _renamed_payload(payload: bytes | None, event: Event, new_id: str) -> bytes:
    data = json.loads(payload) if payload is not None else json.loads(event.to_json())
    data["id"], data["id_collision_of"] = new_id, event.id
    return json.dumps(data, separators=(",", ":")).encode("utf-8")


def collision_alert(collision: Collision) -> Alert:
    """The alert raised for a collision, grouped per (site, device) by its dedup key."""
    e, first = collision.event, collision.first
    same_device = (first.site, first.device) == (e.site, e.device)
    cause = ("its data folder was wiped or replaced (an agent older than schema 1.1 restarts its ids)"
             if same_device else f"{first.site}/{first.device} uses the same device name and id scheme")
    return Alert(
        id=f"id-collision-{e.id}", ts_ms=e.ts_ms, device=e.device, site=e.site, zone=e.zone, severity="warning",
        code="id_collision", dedup_key=f"{e.site}:{e.device}:id_collision",
        message=(f"event id {collision.original_id} from {e.site}/{e.device} was already stored with other content "
                 f"(probably {cause}); stored as {e.id}. Upgrade the agent so its ids carry an instance id."),
    )


def record(conn: sqlite3.Connection, resolved: Resolved, received_ms: int) -> list[Alert]:
    """Write the collision rows and the per-install rows (first/last seen, repeats) for a resolved batch.

    Returns an ``instance_changed`` alert for each known device that came back under a new install id.
    """
    conn.executemany(
        "INSERT INTO id_collisions (event_id, stored_as, site, device, first_site, first_device, received_ms)"
        " VALUES (?,?,?,?,?,?,?)",
        [(c.original_id, c.event.id, c.event.site, c.event.device, c.first.site, c.first.device, received_ms)
         for c in resolved.collisions],
    )
    seen: dict[tuple[str, str, str], tuple[Event, int]] = {}
    for event, _ in resolved.fresh:
        key = (event.site, event.device, event.instance or LEGACY_INSTANCE)
        seen.setdefault(key, (event, 0))
    for event in resolved.repeats:
        key = (event.site, event.device, event.instance or LEGACY_INSTANCE)
        first, repeats = seen.get(key, (event, 0))
        seen[key] = (first, repeats + 1)
    alerts = []
    for (site, device, instance), (event, _) in seen.items():
        if instance == LEGACY_INSTANCE:
            continue
        known = {row[0] for row in conn.execute(
            "SELECT instance FROM device_instances WHERE site = ? AND device = ?", (site, device))}
        if known and instance not in known:
            alerts.append(_new_install_alert(event))
    conn.executemany(
        "INSERT INTO device_instances (site, device, instance, first_seen_ms, last_seen_ms, repeats)"
        " VALUES (?,?,?,?,?,?) ON CONFLICT (site, device, instance) DO UPDATE SET"
        " last_seen_ms = max(device_instances.last_seen_ms, excluded.last_seen_ms),"
        " repeats = device_instances.repeats + excluded.repeats",
        [(*key, received_ms, received_ms, repeats) for key, (_, repeats) in seen.items()],
    )
    return alerts


def _new_install_alert(event: Event) -> Alert:
    return Alert(
        id=f"instance-changed-{event.site}-{event.device}-{event.instance}", ts_ms=event.ts_ms, device=event.device,
        site=event.site, zone=event.zone, severity="info", code="instance_changed",
        dedup_key=f"{event.site}:{event.device}:instance_changed",
        message=(f"{event.site}/{event.device} came back as a new install (instance {event.instance}): its data "
                 "folder was wiped or its SD card replaced, so boot and seq restarted at 1. Events still spooled "
                 "in the old folder, if any, went with it; the device's seq audit lists each install."),
    )


def _ranges(seqs: list[int]) -> list[SeqRange]:
    """Missing seqs between the lowest and highest received, as ranges."""
    gaps: list[SeqRange] = []
    for low, high in zip(seqs, seqs[1:]):
        if high > low + 1:
            gaps.append(SeqRange(first=low + 1, last=high - 1))
    return gaps


def audit(conn: sqlite3.Connection, site: str, device: str) -> DeviceAudit | None:
    """Gaps and repeats of the event seq per install (and per boot) of one device; None when unknown.

    Seq continues across boots of one install, so gaps are computed over the install's whole seq series; a
    new install (wiped data folder, new SD card) starts again at 1 and is listed as such.
    """
    installs = conn.execute(
        "SELECT instance, first_seen_ms, last_seen_ms, repeats FROM device_instances"
        " WHERE site = ? AND device = ? ORDER BY first_seen_ms, instance", (site, device),
    ).fetchall()
    if not installs:
        return None
    result: list[InstanceAudit] = []
    for instance, first_ms, last_ms, repeats in installs:
        rows = conn.execute(
            "SELECT boot, seq FROM events WHERE site = ? AND device = ? AND instance = ? ORDER BY seq, boot",
            (site, device, instance),
        ).fetchall()
        seqs = sorted({seq for _, seq in rows})
        boots: dict[int, list[int]] = {}
        for boot, seq in rows:
            boots.setdefault(boot, []).append(seq)
        gaps = _ranges(seqs)
        if instance != LEGACY_INSTANCE and seqs and seqs[0] > 1:
            gaps.insert(0, SeqRange(first=1, last=seqs[0] - 1))  # an install starts at seq 1
        result.append(InstanceAudit(
            instance=instance or None, first_seen_ms=first_ms, last_seen_ms=last_ms, events=len(rows),
            first_seq=seqs[0] if seqs else None, last_seq=seqs[-1] if seqs else None,
            missing=sum(g.last - g.first + 1 for g in gaps), gaps=gaps[:100], repeats=repeats,
            boots={boot: (min(s), max(s), len(s)) for boot, s in sorted(boots.items())},
        ))
    collisions = conn.execute("SELECT count(*) FROM id_collisions WHERE site = ? AND device = ?",
                              (site, device)).fetchone()[0]
    return DeviceAudit(site=site, device=device, installs=result, reinstalled=len(result) > 1,
                       id_collisions=int(collisions))
