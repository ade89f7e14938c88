"""Frame images of the datasets on PostgreSQL: one ``bytea`` row per distinct JPEG, keyed by its sha256.

On SQLite the images are files next to the database; several API workers on several hosts share no disk, so
on PostgreSQL they live in the database every worker reads (deduplicated like the files: a JPEG stored twice
is one row). JPEGs do not compress, so the column is stored out of line without compression (``EXTERNAL``).
The dataset tables themselves are ``sqlite_datasets.DATASETS_DDL``, translated (``postgres_schema``).
"""

from __future__ import annotations

import hashlib
from typing import Any

from cloud_api.storage.postgres_dialect import PgConnection

# in SQLite spelling: ``postgres_schema.pg_ddl`` turns it into PostgreSQL types (BLOB -> BYTEA)
IMAGES_DDL = """
CREATE TABLE IF NOT EXISTS dataset_images (
    sha256 TEXT PRIMARY KEY,
    jpeg BLOB NOT NULL,
    created_ms INTEGER NOT NULL
);
"""
IMAGES_STORAGE = "ALTER TABLE dataset_images ALTER COLUMN jpeg SET STORAGE EXTERNAL"
DATASET_LOCK_SEED = 0x46_4C_44_53  # "FLDS": seed of the per-dataset advisory lock key


def put_image(conn: Any, jpeg: bytes, now_ms: int) -> str:
    """Store ``jpeg`` once by content (a row that exists is not sent again); returns its sha256."""
    sha = hashlib.sha256(jpeg).hexdigest()
    if conn.execute("SELECT 1 FROM dataset_images WHERE sha256 = ?", (sha,)).fetchone() is None:
        conn.execute("INSERT INTO dataset_images (sha256, jpeg, created_ms) VALUES (?,?,?)"
                     " ON CONFLICT (sha256) DO NOTHING", (sha, jpeg, now_ms))
    return sha


def get_image(conn: Any, sha256: str) -> bytes | None:
    """The JPEG with that sha256, or None."""
    row = conn.execute("SELECT jpeg FROM dataset_images WHERE sha256 = ?", (sha256,)).fetchone()
    return bytes(row[0]) if row else None


def lock_dataset(conn: PgConnection, name: str) -> None:
    """Hold the dataset's advisory lock until the transaction ends: two workers never lease the same frame or
    both pass a version check (what ``BEGIN IMMEDIATE`` guarantees on SQLite)."""
    conn.raw.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, %s))", (name, DATASET_LOCK_SEED))
