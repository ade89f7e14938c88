"""Users, login tokens and harvest plans: the metadata part of ``SqliteStore`` (mixed into it)."""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager

from cloud_api.storage import sqlite_harvest, sqlite_users
from cloud_api.storage.records import HarvestDoneRecord, HarvestPlanRecord, TokenRecord, UserRecord


class MetadataMixin:
    """Needs ``_conn()`` and ``_transaction()`` from the class it is mixed into."""

    def _conn(self) -> sqlite3.Connection:
        raise NotImplementedError

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    # ------------------------------------------------------------ users and tokens

    def create_user(self, user: UserRecord) -> None:
        """Raises ``UserExists`` when the name is taken."""
        with self._transaction() as conn:
            sqlite_users.insert_user(conn, user)

    def get_user(self, username: str) -> UserRecord | None:
        return sqlite_users.get_user(self._conn(), username)

    def list_users(self) -> list[UserRecord]:
        return sqlite_users.list_users(self._conn())

    def add_token(self, token: TokenRecord, now_ms: int) -> None:
        with self._transaction() as conn:
            sqlite_users.insert_token(conn, token, now_ms)

    def token_owner(self, token_sha256: str, now_ms: int) -> tuple[UserRecord, TokenRecord] | None:
        return sqlite_users.token_owner(self._conn(), token_sha256, now_ms)

    def delete_token(self, token_sha256: str) -> bool:
        with self._transaction() as conn:
            return sqlite_users.delete_token(conn, token_sha256)

    def list_tokens(self, username: str | None, now_ms: int) -> list[TokenRecord]:
        return sqlite_users.list_tokens(self._conn(), username, now_ms)

    # ------------------------------------------------------------ harvest

    def get_harvest_plan(self, date: str) -> HarvestPlanRecord | None:
        return sqlite_harvest.get_plan(self._conn(), date)

    def put_harvest_plan(self, plan: HarvestPlanRecord, *, replace: bool) -> HarvestPlanRecord:
        """Store a plan and return the stored one (with ``replace=False`` an existing plan wins)."""
        with self._transaction() as conn:
            sqlite_harvest.put_plan(conn, plan, replace=replace)
            stored = sqlite_harvest.get_plan(conn, plan.date)
        assert stored is not None
        return stored

    def mark_shed_done(self, mark: HarvestDoneRecord) -> HarvestDoneRecord:
        with self._transaction() as conn:
            return sqlite_harvest.mark_done(conn, mark)

    def unmark_shed_done(self, date: str, shed_id: str) -> bool:
        with self._transaction() as conn:
            return sqlite_harvest.unmark_done(conn, date, shed_id)

    def list_done(self, date: str) -> list[HarvestDoneRecord]:
        return sqlite_harvest.list_done(self._conn(), date)
