"""SQLite backend, the embedded default: WAL, fsync'd on every commit, one file per process (or host)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from libs.database.sqlite import SqliteDatabase
from libs.domain import EventKind, RecordedEvent, ServedResponse, UserEvent
from libs.events import migrations
from libs.events.base import (
    DEFAULT_KINDS,
    Attributed,
    BasketRow,
    EventConflictError,
    EventStore,
    Purchase,
    conflicts,
    response_body,
    response_from_body,
)


# A purchase `e` and each other purchase `o` of its basket (none: o's columns "").
BASKETS = (
    "SELECT e.event_id, e.product_id, e.user_id, e.ts, COALESCE(o.event_id, ''), COALESCE(o.product_id, '') "
    "FROM events e LEFT JOIN events o ON o.user_id = e.user_id AND o.ts = e.ts AND o.kind = e.kind "
    "AND o.product_id != e.product_id"
)


class SqliteEventStore(SqliteDatabase, EventStore):
    def __init__(self, path: Path, timeout_s: float = 2.0) -> None:
        super().__init__(path, migrations.SCHEMA, timeout_s)

    def append(self, events: Sequence[RecordedEvent]) -> tuple[int, int]:
        rows = [
            (
                e.event_id,
                e.user_id,
                e.event.product_id,
                e.event.kind.value,
                e.event.ts,
                e.event.quantity,
                e.attribution_token,
                e.variant,
            )
            for e in events
        ]
        with self._transaction() as conn:
            before = conn.total_changes
            cur = conn.executemany("INSERT OR IGNORE INTO events VALUES (?,?,?,?,?,?,?,?)", rows)
            accepted = conn.total_changes - before
            if accepted < len(rows):
                ids = [e.event_id for e in events]
                marks = ",".join("?" * len(ids))
                stored = {
                    r[0]: tuple(r[1:])
                    for r in cur.execute(
                        "SELECT event_id, user_id, product_id, kind, quantity, attribution_token FROM events "
                        f"WHERE event_id IN ({marks})",
                        ids,
                    )
                }
                if bad := conflicts(events, stored):
                    raise EventConflictError(bad)
        return accepted, len(rows) - accepted

    def recent(self, user_id: str, limit: int = 200, kinds: Sequence[EventKind] = DEFAULT_KINDS) -> list[UserEvent]:
        marks = ",".join("?" * len(kinds))
        with self._session() as conn:
            rows = conn.execute(
                f"SELECT product_id, kind, ts, quantity FROM events WHERE user_id=? AND kind IN ({marks}) "
                "ORDER BY ts DESC LIMIT ?",
                (user_id, *(k.value for k in kinds), limit),
            ).fetchall()
        return [UserEvent(p, EventKind(k), ts, q) for p, k, ts, q in reversed(rows)]

    def read_purchases(self) -> list[Purchase]:
        with self._session() as conn:
            return conn.execute(
                "SELECT user_id, product_id, ts, quantity, variant FROM events WHERE kind=? ORDER BY ts",
                (EventKind.PURCHASE.value,),
            ).fetchall()

    def baskets_of(self, product_ids: Sequence[str], after: float = -1.0) -> tuple[list[BasketRow], float]:
        # Position = rowid: writers hold the database's write lock, so rows commit in rowid order. Read first, so
        # a row committed during the query is returned again next time rather than skipped.
        with self._session() as conn:
            head = conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM events").fetchone()[0]
            if not product_ids:
                return [], float(head)
            marks = ",".join("?" * len(product_ids))
            kind = EventKind.PURCHASE.value
            if after < 0:  # everything: through the product index
                sql = f"{BASKETS} WHERE e.kind = ? AND e.product_id IN ({marks})"
                args: tuple = (kind, *product_ids)
            else:
                # What was recorded after `after`, through the rowid range (the unary + keeps SQLite off the
                # product index, which would read every purchase of the products; CROSS JOIN keeps the new rows
                # the outer loop): their purchases, and other purchases that joined their baskets.
                sql = (
                    f"{BASKETS} WHERE e.rowid > ? AND e.kind = ? AND +e.product_id IN ({marks}) UNION ALL "
                    "SELECT e.event_id, e.product_id, e.user_id, e.ts, o.event_id, o.product_id FROM events o "
                    "CROSS JOIN events e ON e.user_id = o.user_id AND e.ts = o.ts AND e.kind = o.kind "
                    f"AND e.product_id != o.product_id WHERE o.rowid > ? AND o.kind = ? AND +e.product_id IN ({marks})"
                )
                args = (after, kind, *product_ids, after, kind, *product_ids)
            return conn.execute(sql, args).fetchall(), float(head)

    def read_attributed(self) -> list[Attributed]:
        with self._session() as conn:
            return conn.execute(
                "SELECT attribution_token, variant, kind, product_id FROM events "
                "WHERE attribution_token != '' ORDER BY ts"
            ).fetchall()

    def prune(self, older_than: float) -> int:
        with self._transaction() as conn:
            return conn.execute("DELETE FROM events WHERE ts < ?", (older_than,)).rowcount

    def keep_response(self, response: ServedResponse) -> None:
        with self._session() as conn:
            # Durable at the next checkpoint rather than at commit (EventStore.keep_response); WAL stays consistent.
            conn.execute("PRAGMA synchronous=NORMAL")
            try:
                conn.execute(
                    "INSERT OR IGNORE INTO responses VALUES (?,?,?)",
                    (response.response_id, response.created, response_body(response)),
                )
            finally:
                conn.execute("PRAGMA synchronous=FULL")

    def served_response(self, response_id: str) -> ServedResponse | None:
        with self._session() as conn:
            row = conn.execute("SELECT created, body FROM responses WHERE response_id=?", (response_id,)).fetchone()
        return response_from_body(response_id, *row) if row else None

    def prune_responses(self, older_than: float) -> int:
        with self._transaction() as conn:
            return conn.execute("DELETE FROM responses WHERE created < ?", (older_than,)).rowcount
