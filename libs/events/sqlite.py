"""Durable event store: SQLite in WAL mode, fsync'd on commit, idempotent on event_id.

The gateway owns it; inner services receive a user's recent events in their requests.
Training reads it alongside the dataset (`read_purchases`).
"""
from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

from libs.domain import EventKind, RecordedEvent, UserEvent

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    event_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    product_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    ts REAL NOT NULL,
    quantity INTEGER NOT NULL,
    attribution_token TEXT NOT NULL,
    variant TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_user_ts ON events(user_id, ts);
"""


class EventStore:
    """Thread-safe; call from asyncio via `asyncio.to_thread` (SQLite calls block)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        # FULL: the WAL is fsync'd at every commit, so an OK answer means the event survives a crash.
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.executescript(SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def append(self, events: Sequence[RecordedEvent]) -> tuple[int, int]:
        """Store all events atomically; returns (accepted, duplicates)."""
        rows = [(e.event_id, e.user_id, e.event.product_id, e.event.kind.value, e.event.ts, e.event.quantity,
                 e.attribution_token, e.variant) for e in events]
        with self._lock:
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                before = self._conn.total_changes
                cur.executemany("INSERT OR IGNORE INTO events VALUES (?,?,?,?,?,?,?,?)", rows)
                accepted = self._conn.total_changes - before
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        return accepted, len(rows) - accepted

    def recent(self, user_id: str, limit: int = 200,
               kinds: Sequence[EventKind] = (EventKind.PURCHASE, EventKind.ADD_TO_CART)) -> list[UserEvent]:
        """The user's newest events of the given kinds, oldest first."""
        marks = ",".join("?" * len(kinds))
        with self._lock:
            rows = self._conn.execute(
                f"SELECT product_id, kind, ts, quantity FROM events WHERE user_id=? AND kind IN ({marks}) "
                "ORDER BY ts DESC LIMIT ?", (user_id, *(k.value for k in kinds), limit)).fetchall()
        return [UserEvent(p, EventKind(k), ts, q) for p, k, ts, q in reversed(rows)]

    def read_purchases(self) -> list[tuple[str, str, float, int, str]]:
        """All purchases as (user_id, product_id, ts, quantity, variant), for training and offline eval."""
        with self._lock:
            return self._conn.execute(
                "SELECT user_id, product_id, ts, quantity, variant FROM events WHERE kind=? ORDER BY ts",
                (EventKind.PURCHASE.value,)).fetchall()
