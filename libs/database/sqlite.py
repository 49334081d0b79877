"""SQLite plumbing: WAL, fsync'd on every commit, one connection per store object guarded by a lock."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from libs.database import RETRY_AFTER_S
from libs.database.migrations import Schema, pending
from libs.errors import UnavailableError

log = logging.getLogger(__name__)


class SqliteDatabase:
    """Base of the SQLite stores: `_session()` to read, `_transaction()` to write, both on the migrated schema."""

    def __init__(self, path: Path, schema: Schema, timeout_s: float = 2.0) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._schema = schema
        # timeout: how long a write waits for another process's lock before "database is locked".
        self._conn = sqlite3.connect(str(path), timeout=timeout_s, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        self._migrated = False

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def _session(self) -> Iterator[sqlite3.Connection]:
        """The connection, migrated, under the lock; locked/full/read-only/corrupt files -> UnavailableError."""
        with self._lock:
            try:
                if not self._migrated:
                    self._migrate()
                yield self._conn
            except sqlite3.DatabaseError as exc:  # OperationalError (locked, full, read-only) and corrupt files
                if isinstance(exc, (sqlite3.ProgrammingError, sqlite3.IntegrityError)):
                    raise  # a bug here, not the database's state
                log.warning("%s unavailable: %s", self._schema.what, exc)
                raise UnavailableError(f"{self._schema.what} unavailable: {exc}", RETRY_AFTER_S) from exc

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._session() as conn:
            # IMMEDIATE takes the write lock up front, so concurrent processes serialise instead of failing.
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:  # a failed COMMIT (disk full) leaves it open
                    conn.execute("ROLLBACK")
                raise

    def _migrate(self) -> None:
        conn, table = self._conn, self._schema.table
        conn.execute("PRAGMA journal_mode=WAL")
        # FULL: the WAL is fsync'd at every commit, so an OK answer means the write survives a crash.
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {table} (version INTEGER PRIMARY KEY, "
                "name TEXT NOT NULL, applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)"
            )
            applied = {v for (v,) in conn.execute(f"SELECT version FROM {table}")}
            for m in pending(self._schema.load("sqlite"), applied):
                for statement in _statements(m.sql):
                    conn.execute(statement)
                conn.execute(f"INSERT INTO {table} (version, name) VALUES (?, ?)", (m.version, m.name))
                log.info("%s: applied migration %04d_%s", self._schema.what, m.version, m.name)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self._migrated = True


def _statements(sql: str) -> Iterator[str]:
    """Split a migration into statements (sqlite3 runs one per execute; executescript would commit)."""
    buffer = ""
    for line in sql.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            yield buffer
            buffer = ""
    if buffer.strip():
        raise ValueError(f"unterminated statement in migration: {buffer.strip()[:80]!r}")
