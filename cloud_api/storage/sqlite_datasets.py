"""Datasets for the learning loop: frames with predictions, labels, status, split and leases.

The queries run on SQLite and, translated, on PostgreSQL (``postgres_dialect``). Images are content-addressed
(one copy per distinct JPEG, stored before its row): on SQLite files under
``{db folder}/datasets/{sha[:2]}/{sha256}.jpg``; on PostgreSQL rows of ``dataset_images`` (``postgres_datasets``),
so every API worker on every host sees them. The store methods ``_put_image`` / ``frame_jpeg`` hide which. A frame id is the device's sample id (so a sample that
arrives twice is stored once) or a random id for pushed and imported frames. Its split is fixed when the
frame is created (:func:`split_of`) and never changes. Labels are saved with an optimistic ``version``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import tempfile
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fieldline.contract import Sample

from cloud_api.storage.records import StoreChange

STATUSES = ("new", "labelled", "skipped", "in_training")
SPLITS = ("train", "val", "test")
DATASET_NAME = r"^[a-z0-9][a-z0-9_-]{0,63}$"
RESERVED_NAMES = ("requests",)  # a path segment of /datasets/requests

DATASETS_DDL = """
CREATE TABLE IF NOT EXISTS datasets (
    name TEXT PRIMARY KEY,
    labels TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_ms INTEGER NOT NULL,
    created_by TEXT
);

CREATE TABLE IF NOT EXISTS dataset_frames (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    dataset TEXT NOT NULL REFERENCES datasets (name),
    source_kind TEXT NOT NULL,
    site TEXT,
    device TEXT,
    camera TEXT,
    zone TEXT,
    ts_ms INTEGER NOT NULL,
    model TEXT,
    reason TEXT NOT NULL,
    note TEXT,
    request_id TEXT,
    status TEXT NOT NULL CHECK (status IN ('new', 'labelled', 'skipped', 'in_training')),
    split TEXT NOT NULL CHECK (split IN ('train', 'val', 'test')),
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    image_sha256 TEXT NOT NULL,
    predictions TEXT NOT NULL,
    labels TEXT,
    version INTEGER NOT NULL DEFAULT 1,
    labelled_by TEXT,
    labelled_at_ms INTEGER,
    lease_user TEXT,
    lease_until_ms INTEGER,
    created_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS dataset_frames_status ON dataset_frames (dataset, status, seq);
CREATE INDEX IF NOT EXISTS dataset_frames_request ON dataset_frames (request_id) WHERE request_id IS NOT NULL;
"""


def ensure_schema(conn: sqlite3.Connection) -> None:
    conn.executescript(DATASETS_DDL)


class VersionConflict(RuntimeError):
    """Labels saved against an older version of the frame: someone else saved first."""


class LeaseLost(RuntimeError):
    """A lease renewal refused: another operator holds the frame, or it is no longer new."""


@dataclass(frozen=True)
class DatasetRecord:
    name: str
    labels: list[str]
    description: str
    created_ms: int
    created_by: str | None


@dataclass(frozen=True)
class NewFrame:
    """A frame to add; ``split`` None means by hash of the id (see :func:`split_of`)."""

    id: str
    dataset: str
    source_kind: str  # device | push | import | event
    ts_ms: int
    reason: str
    width: int
    height: int
    predictions: list[dict[str, Any]]
    site: str | None = None
    device: str | None = None
    camera: str | None = None
    zone: dict[str, Any] | None = None
    model: dict[str, Any] | None = None
    note: str | None = None
    request_id: str | None = None
    labels: list[dict[str, Any]] | None = None
    status: str = "new"
    split: str | None = None
    labelled_by: str | None = None


@dataclass(frozen=True)
class FrameRecord:
    id: str
    dataset: str
    source_kind: str
    site: str | None
    device: str | None
    camera: str | None
    zone: dict[str, Any] | None
    ts_ms: int
    model: dict[str, Any] | None
    reason: str
    note: str | None
    request_id: str | None
    status: str
    split: str
    width: int
    height: int
    image_sha256: str
    predictions: list[dict[str, Any]]
    labels: list[dict[str, Any]] | None
    version: int
    labelled_by: str | None
    labelled_at_ms: int | None
    lease_user: str | None
    lease_until_ms: int | None
    created_ms: int
    seq: int = 0


@dataclass(frozen=True)
class DatasetChange:
    """What the live WebSocket gets: ``{type: "dataset", data: {dataset, frame, status}}``."""

    dataset: str
    frame: str | None
    status: str
    extra: dict[str, Any] = field(default_factory=dict)


def split_of(frame_id: str) -> str:
    """train / val / test at 80 / 10 / 10 by a hash of the frame id: stable, no state."""
    u = int.from_bytes(hashlib.sha256(frame_id.encode("utf-8")).digest()[:8], "big") / 2.0 ** 64
    return "train" if u < 0.8 else "val" if u < 0.9 else "test"


def dataset_name_for(model_name: str) -> str:
    """The dataset a model's samples go to: its name made to fit ``DATASET_NAME``."""
    name = re.sub(r"[^a-z0-9_-]+", "-", model_name.lower()).strip("-_")[:64] or "samples"
    return name if name not in RESERVED_NAMES else f"{name}-model"


_FRAME_COLUMNS = ("id, dataset, source_kind, site, device, camera, zone, ts_ms, model, reason, note, request_id,"
                  " status, split, width, height, image_sha256, predictions, labels, version, labelled_by,"
                  " labelled_at_ms, lease_user, lease_until_ms, created_ms, seq")


def _loads(value: str | None) -> Any:
    return json.loads(value) if value is not None else None


def _frame(row: Sequence[Any]) -> FrameRecord:
    return FrameRecord(
        id=row[0], dataset=row[1], source_kind=row[2], site=row[3], device=row[4], camera=row[5],
        zone=_loads(row[6]), ts_ms=row[7], model=_loads(row[8]), reason=row[9], note=row[10], request_id=row[11],
        status=row[12], split=row[13], width=row[14], height=row[15], image_sha256=row[16],
        predictions=json.loads(row[17]), labels=_loads(row[18]), version=row[19], labelled_by=row[20],
        labelled_at_ms=row[21], lease_user=row[22], lease_until_ms=row[23], created_ms=row[24], seq=row[25])


def _dataset(row: Sequence[Any]) -> DatasetRecord:
    return DatasetRecord(name=row[0], labels=json.loads(row[1]), description=row[2], created_ms=row[3],
                         created_by=row[4])


def _dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"))


def write_image(root: Path, jpeg: bytes) -> str:
    """Store ``jpeg`` under ``root`` by its sha256 (once; atomically) and return the sha256."""
    sha = hashlib.sha256(jpeg).hexdigest()
    path = image_path(root, sha)
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".frame-", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(jpeg)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return sha


def image_path(root: Path, sha256: str) -> Path:
    return root / sha256[:2] / f"{sha256}.jpg"


class DatasetsMixin:
    """Needs ``_conn()``, ``_transaction()``, ``_emit()`` and ``_path`` from ``SqliteStore``."""

    _path: Path

    def _conn(self) -> sqlite3.Connection:
        raise NotImplementedError

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def _emit(self, changes: list[StoreChange]) -> None:
        raise NotImplementedError

    def datasets_ready(self) -> bool:
        """True when this store has the dataset tables (SQLite and PostgreSQL stores, once open)."""
        if getattr(self, "_datasets_ready", False):
            return True
        try:
            self._conn().execute("SELECT 1 FROM dataset_frames LIMIT 1").fetchone()
        except Exception:  # noqa: BLE001 - no such table (or another database): not ready
            return False
        self._datasets_ready = True
        return True

    @property
    def datasets_dir(self) -> Path:
        """Folder of the frame images: ``datasets/`` next to the database file."""
        return self._path.parent / "datasets"

    def _put_image(self, jpeg: bytes) -> str:
        """Store a frame's JPEG once by content; returns its sha256 (SQLite: a file under ``datasets_dir``)."""
        return write_image(self.datasets_dir, jpeg)

    def frame_jpeg(self, record: FrameRecord) -> bytes | None:
        """The frame's JPEG, or None when it is missing."""
        path = image_path(self.datasets_dir, record.image_sha256)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None

    def _lock_dataset(self, conn: Any, name: str) -> None:
        """Serialise the read-then-write steps (leases, versions, labels) on one dataset inside a transaction.
        SQLite's ``BEGIN IMMEDIATE`` already does; the PostgreSQL store takes an advisory lock."""

    # ------------------------------------------------------------ datasets

    def create_dataset(self, name: str, labels: Sequence[str], description: str, by: str | None,
                       now_ms: int) -> DatasetRecord | None:
        """The new dataset, or None when one of that name exists."""
        with self._transaction() as conn:
            cur = conn.execute("INSERT OR IGNORE INTO datasets (name, labels, description, created_ms, created_by)"
                               " VALUES (?,?,?,?,?)", (name, json.dumps(list(labels)), description, now_ms, by))
        if cur.rowcount != 1:
            return None
        self._emit([StoreChange("dataset", "created", DatasetChange(name, None, "created"))])
        return self.get_dataset(name)

    def get_dataset(self, name: str) -> DatasetRecord | None:
        row = self._conn().execute("SELECT name, labels, description, created_ms, created_by FROM datasets"
                                   " WHERE name = ?", (name,)).fetchone()
        return _dataset(row) if row else None

    def list_datasets(self) -> list[DatasetRecord]:
        rows = self._conn().execute("SELECT name, labels, description, created_ms, created_by FROM datasets"
                                    " ORDER BY name").fetchall()
        return [_dataset(r) for r in rows]

    def add_dataset_labels(self, name: str, labels: Sequence[str]) -> DatasetRecord | None:
        """Append labels the dataset does not have yet (class-id order of the old ones is kept)."""
        with self._transaction() as conn:
            self._lock_dataset(conn, name)
            _add_labels(conn, name, labels)
        return self.get_dataset(name)

    def dataset_counts(self, name: str) -> tuple[dict[str, int], dict[str, int]]:
        """(frames by status, frames by split), every key present."""
        by_status = dict.fromkeys(STATUSES, 0)
        by_split = dict.fromkeys(SPLITS, 0)
        for status, split, n in self._conn().execute(
                "SELECT status, split, count(*) FROM dataset_frames WHERE dataset = ? GROUP BY status, split",
                (name,)):
            by_status[status] += n
            by_split[split] += n
        return by_status, by_split

    def label_counts(self, name: str, statuses: Sequence[str] = ("labelled", "in_training")) -> dict[str, int]:
        """Boxes per label over the frames with those statuses."""
        marks = ",".join("?" * len(statuses))
        rows = self._conn().execute(
            f"SELECT json_extract(j.value, '$.label'), count(*) FROM dataset_frames f, json_each(f.labels) j"
            f" WHERE f.dataset = ? AND f.status IN ({marks}) GROUP BY 1", (name, *statuses)).fetchall()
        return {str(label): int(n) for label, n in rows}

    # ------------------------------------------------------------ frames

    def add_frame(self, frame: NewFrame, jpeg: bytes, now_ms: int) -> tuple[FrameRecord, bool]:
        """Store a frame (its image first); (the frame, False) when one with that id exists already."""
        sha = self._put_image(jpeg)
        with self._transaction() as conn:
            created = _insert_frame(conn, frame, sha, now_ms)
            record = _get_frame(conn, frame.id)
        assert record is not None
        if created:
            self._emit([StoreChange("dataset", "frame", DatasetChange(record.dataset, record.id, record.status))])
        return record, created

    def write_sample(self, sample: Sample, jpeg: bytes, received_ms: int) -> bool:
        """A device's sample -> a new frame (of ``sample.dataset`` or the model's dataset, made on first use);
        False when that sample id is stored already."""
        if not self.datasets_ready():
            raise RuntimeError("this store has no dataset tables (is it open?)")
        name = sample.dataset or dataset_name_for(sample.model.name)
        labels = list(dict.fromkeys([*sample.model_labels, *(d.label for d in sample.detections)]))
        sha = self._put_image(jpeg)
        frame = NewFrame(
            id=sample.id, dataset=name, source_kind="device", ts_ms=sample.ts_ms, reason=sample.reason,
            width=sample.width, height=sample.height, site=sample.site, device=sample.device, camera=sample.camera,
            zone=sample.zone.model_dump(), model=sample.model.model_dump(), note=sample.note,
            request_id=sample.request_id,
            predictions=[{"label": d.label, "score": d.score, "box": list(d.box)} for d in sample.detections])
        with self._transaction() as conn:
            self._lock_dataset(conn, name)
            fresh_dataset = conn.execute(
                "INSERT OR IGNORE INTO datasets (name, labels, description, created_ms, created_by)"
                " VALUES (?,?,?,?,NULL)",
                (name, json.dumps(labels), f"samples of model {sample.model.name}", received_ms)).rowcount == 1
            if not fresh_dataset:
                _add_labels(conn, name, labels)
            created = _insert_frame(conn, frame, sha, received_ms)
        changes = [StoreChange("dataset", "created", DatasetChange(name, None, "created"))] if fresh_dataset else []
        if created:
            changes.append(StoreChange("dataset", "frame", DatasetChange(name, sample.id, "new",
                                                                         {"reason": sample.reason})))
        self._emit(changes)
        return created

    def get_frame(self, dataset: str, frame_id: str) -> FrameRecord | None:
        record = _get_frame(self._conn(), frame_id)
        return record if record is not None and record.dataset == dataset else None

    def list_frames(self, dataset: str, *, status: Sequence[str] = (), split: str | None = None,
                    reason: str | None = None, limit: int = 100, offset: int = 0) -> tuple[list[FrameRecord], int]:
        """Frames in arrival order and the total that match."""
        where, params = ["dataset = ?"], [dataset]
        if status:
            where.append(f"status IN ({','.join('?' * len(status))})")
            params += list(status)
        for column, value in (("split", split), ("reason", reason)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        clause = " AND ".join(where)
        conn = self._conn()
        total = int(conn.execute(f"SELECT count(*) FROM dataset_frames WHERE {clause}", params).fetchone()[0])
        rows = conn.execute(f"SELECT {_FRAME_COLUMNS} FROM dataset_frames WHERE {clause} ORDER BY seq"
                            " LIMIT ? OFFSET ?", [*params, limit, offset]).fetchall()
        return [_frame(r) for r in rows], total

    def event_payload(self, event_id: str) -> dict[str, Any] | None:
        """The stored event (wire JSON) with that id, for ``/datasets/requests/from-event``."""
        row = self._conn().execute("SELECT payload FROM events WHERE id = ?", (event_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def frames_for_request(self, request_id: str) -> list[FrameRecord]:
        rows = self._conn().execute(f"SELECT {_FRAME_COLUMNS} FROM dataset_frames WHERE request_id = ?"
                                    " ORDER BY seq", (request_id,)).fetchall()
        return [_frame(r) for r in rows]

    def lease_next(self, dataset: str, user: str, after: str | None, now_ms: int,
                   lease_ms: int) -> FrameRecord | None:
        """The next new frame nobody else holds (after ``after`` in arrival order, then from the start), leased
        to ``user`` until ``now_ms + lease_ms``; the user's other leases in the dataset are released."""
        with self._transaction() as conn:  # BEGIN IMMEDIATE: two callers never lease the same frame
            self._lock_dataset(conn, dataset)
            after_seq = 0
            if after is not None:
                row = conn.execute("SELECT seq FROM dataset_frames WHERE id = ? AND dataset = ?",
                                   (after, dataset)).fetchone()
                after_seq = int(row[0]) if row else 0
            free = ("dataset = ? AND status = 'new' AND (lease_user IS NULL OR lease_until_ms <= ? OR lease_user = ?)"
                    + (" AND id != ?" if after is not None else ""))
            params: list[Any] = [dataset, now_ms, user] + ([after] if after is not None else [])
            row = conn.execute(f"SELECT id FROM dataset_frames WHERE {free} AND seq > ? ORDER BY seq LIMIT 1",
                               [*params, after_seq]).fetchone()
            if row is None:
                row = conn.execute(f"SELECT id FROM dataset_frames WHERE {free} ORDER BY seq LIMIT 1",
                                   params).fetchone()
            conn.execute("UPDATE dataset_frames SET lease_user = NULL, lease_until_ms = NULL"
                         " WHERE dataset = ? AND lease_user = ? AND id != ?",
                         (dataset, user, row[0] if row else ""))
            if row is None:
                return None
            conn.execute("UPDATE dataset_frames SET lease_user = ?, lease_until_ms = ? WHERE id = ?",
                         (user, now_ms + lease_ms, row[0]))
            return _get_frame(conn, row[0])

    def renew_lease(self, dataset: str, frame_id: str, user: str, now_ms: int,
                    lease_ms: int) -> FrameRecord | None:
        """The frame leased to ``user`` until ``now_ms + lease_ms`` (their own lease extended, or a lapsed one
        taken back); None when there is no such frame; raises :class:`LeaseLost` when another operator's lease
        runs or the frame is no longer new."""
        with self._transaction() as conn:
            self._lock_dataset(conn, dataset)
            record = _get_frame(conn, frame_id)
            if record is None or record.dataset != dataset:
                return None
            if record.status != "new":
                raise LeaseLost(f"frame {frame_id} is {record.status} now (by {record.labelled_by or 'someone'})")
            if record.lease_user not in (None, user) and (record.lease_until_ms or 0) > now_ms:
                raise LeaseLost(f"frame {frame_id} is leased to {record.lease_user}")
            conn.execute("UPDATE dataset_frames SET lease_user = ?, lease_until_ms = ? WHERE id = ?",
                         (user, now_ms + lease_ms, frame_id))
            return _get_frame(conn, frame_id)

    def save_labels(self, dataset: str, frame_id: str, labels: list[dict[str, Any]] | None, status: str,
                    version: int, user: str, now_ms: int) -> FrameRecord | None:
        """Labels and status (version + 1, lease released); None when there is no such frame; raises
        :class:`VersionConflict` when ``version`` is not the frame's current one."""
        with self._transaction() as conn:
            self._lock_dataset(conn, dataset)
            record = _get_frame(conn, frame_id)
            if record is None or record.dataset != dataset:
                return None
            if record.version != version:
                raise VersionConflict(f"frame {frame_id} is at version {record.version}, the save was made against "
                                      f"version {version}: {record.labelled_by or 'someone'} saved it first")
            conn.execute("UPDATE dataset_frames SET labels = ?, status = ?, version = version + 1, labelled_by = ?,"
                         " labelled_at_ms = ?, lease_user = NULL, lease_until_ms = NULL WHERE id = ?",
                         (_dumps(labels), status, user, now_ms, frame_id))
            record = _get_frame(conn, frame_id)
        assert record is not None
        self._emit([StoreChange("dataset", status, DatasetChange(dataset, frame_id, status, {"by": user}))])
        return record

    def set_frame_status(self, dataset: str, frame_ids: Sequence[str], status: str,
                         allowed_from: Sequence[str]) -> int:
        """Move frames in ``allowed_from`` to ``status`` (version + 1, leases released); returns how many."""
        marks, from_marks = ",".join("?" * len(frame_ids)), ",".join("?" * len(allowed_from))
        with self._transaction() as conn:
            self._lock_dataset(conn, dataset)
            moved = [r[0] for r in conn.execute(
                f"SELECT id FROM dataset_frames WHERE dataset = ? AND id IN ({marks}) AND status IN ({from_marks})",
                (dataset, *frame_ids, *allowed_from))]
            conn.executemany("UPDATE dataset_frames SET status = ?, version = version + 1, lease_user = NULL,"
                             " lease_until_ms = NULL WHERE id = ?", [(status, fid) for fid in moved])
        self._emit([StoreChange("dataset", status, DatasetChange(dataset, fid, status)) for fid in moved])
        return len(moved)


def _add_labels(conn: sqlite3.Connection, name: str, labels: Sequence[str]) -> None:
    row = conn.execute("SELECT labels FROM datasets WHERE name = ?", (name,)).fetchone()
    if row is None:
        return
    known = json.loads(row[0])
    extra = [label for label in dict.fromkeys(labels) if label not in known]
    if extra:
        conn.execute("UPDATE datasets SET labels = ? WHERE name = ?", (json.dumps(known + extra), name))


def _insert_frame(conn: sqlite3.Connection, f: NewFrame, sha: str, now_ms: int) -> bool:
    labelled = f.labels is not None and f.status in ("labelled", "in_training")
    cur = conn.execute(
        "INSERT OR IGNORE INTO dataset_frames (id, dataset, source_kind, site, device, camera, zone, ts_ms, model,"
        " reason, note, request_id, status, split, width, height, image_sha256, predictions, labels, labelled_by,"
        " labelled_at_ms, created_ms) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (f.id, f.dataset, f.source_kind, f.site, f.device, f.camera, _dumps(f.zone), f.ts_ms, _dumps(f.model),
         f.reason, f.note, f.request_id, f.status, f.split or split_of(f.id), f.width, f.height, sha,
         _dumps(f.predictions), _dumps(f.labels), f.labelled_by if labelled else None,
         now_ms if labelled else None, now_ms))
    return cur.rowcount == 1


def _get_frame(conn: sqlite3.Connection, frame_id: str) -> FrameRecord | None:
    row = conn.execute(f"SELECT {_FRAME_COLUMNS} FROM dataset_frames WHERE id = ?", (frame_id,)).fetchone()
    return _frame(row) if row else None
