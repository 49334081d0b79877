"""SQLite backend, the embedded default: WAL, fsync'd on every commit, one file per process (or host)."""
from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from libs.domain import EventKind, RecordedEvent, ServedResponse, UserEvent
from libs.errors import UnavailableError
from libs.events import migrations
from libs.events.base import (
    DEFAULT_KINDS,
    RETRY_AFTER_S,
    Attributed,
    EventConflictError,
    EventStore,
    Purchase,
    conflicts,
    response_body,
    response_from_body,
)

log = logging.getLogger(__name__)


class SqliteEventStore(EventStore):
    def __init__(self, path: Path, timeout_s: float = 2.0) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
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
                log.warning("event store unavailable: %s", exc)
                raise UnavailableError(f"event store unavailable: {exc}", RETRY_AFTER_S) from exc

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
        conn = self._conn
        conn.execute("PRAGMA journal_mode=WAL")
        # FULL: the WAL is fsync'd at every commit, so an OK answer means the event survives a crash.
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(f"CREATE TABLE IF NOT EXISTS {migrations.TABLE} (version INTEGER PRIMARY KEY, "
                         "name TEXT NOT NULL, applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)")
            applied = {v for (v,) in conn.execute(f"SELECT version FROM {migrations.TABLE}")}
            for m in migrations.pending(migrations.load("sqlite"), applied):
                for statement in _statements(m.sql):
                    conn.execute(statement)
                conn.execute(f"INSERT INTO {migrations.TABLE} (version, name) VALUES (?, ?)", (m.version, m.name))
                log.info("event store: applied migration %04d_%s", m.version, m.name)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self._migrated = True

    def append(self, events: Sequence[RecordedEvent]) -> tuple[int, int]:
        rows = [(e.event_id, e.user_id, e.event.product_id, e.event.kind.value, e.event.ts, e.event.quantity,
                 e.attribution_token, e.variant) for e in events]
        with self._transaction() as conn:
            before = conn.total_changes
            cur = conn.executemany("INSERT OR IGNORE INTO events VALUES (?,?,?,?,?,?,?,?)", rows)
            accepted = conn.total_changes - before
            if accepted < len(rows):
                ids = [e.event_id for e in events]
                marks = ",".join("?" * len(ids))
                stored = {r[0]: tuple(r[1:]) for r in cur.execute(
                    "SELECT event_id, user_id, product_id, kind, quantity, attribution_token FROM events "
                    f"WHERE event_id IN ({marks})", ids)}
                if bad := conflicts(events, stored):
                    raise EventConflictError(bad)
        return accepted, len(rows) - accepted

    def recent(self, user_id: str, limit: int = 200, kinds: Sequence[EventKind] = DEFAULT_KINDS) -> list[UserEvent]:
        marks = ",".join("?" * len(kinds))
        with self._session() as conn:
            rows = conn.execute(
                f"SELECT product_id, kind, ts, quantity FROM events WHERE user_id=? AND kind IN ({marks}) "
                "ORDER BY ts DESC LIMIT ?", (user_id, *(k.value for k in kinds), limit)).fetchall()
        return [UserEvent(p, EventKind(k), ts, q) for p, k, ts, q in reversed(rows)]

    def read_purchases(self) -> list[Purchase]:
        with self._session() as conn:
            return conn.execute(
                "SELECT user_id, product_id, ts, quantity, variant FROM events WHERE kind=? ORDER BY ts",
                (EventKind.PURCHASE.value,)).fetchall()

    def read_attributed(self) -> list[Attributed]:
        with self._session() as conn:
            return conn.execute("SELECT attribution_token, variant, kind, product_id FROM events "
                                "WHERE attribution_token != '' ORDER BY ts").fetchall()

    def prune(self, older_than: float) -> int:
        with self._transaction() as conn:
            return conn.execute("DELETE FROM events WHERE ts < ?", (older_than,)).rowcount

    def keep_response(self, response: ServedResponse) -> None:
        with self._session() as conn:
            # Durable at the next checkpoint rather than at commit (EventStore.keep_response); WAL stays consistent.
            conn.execute("PRAGMA synchronous=NORMAL")
            try:
                conn.execute("INSERT OR IGNORE INTO responses VALUES (?,?,?)",
                             (response.response_id, response.created, response_body(response)))
            finally:
                conn.execute("PRAGMA synchronous=FULL")

    def served_response(self, response_id: str) -> ServedResponse | None:
        with self._session() as conn:
            row = conn.execute("SELECT created, body FROM responses WHERE response_id=?", (response_id,)).fetchone()
        return response_from_body(response_id, *row) if row else None

    def prune_responses(self, older_than: float) -> int:
        with self._transaction() as conn:
            return conn.execute("DELETE FROM responses WHERE created < ?", (older_than,)).rowcount


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
