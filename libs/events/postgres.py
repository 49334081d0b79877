"""PostgreSQL backend: shared by every gateway replica (psycopg 3 with a connection pool)."""

from __future__ import annotations

from collections.abc import Sequence

from libs.database.postgres import PostgresDatabase
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

INSERT = """
INSERT INTO events (event_id, user_id, product_id, kind, ts_us, quantity, attribution_token, variant)
SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::bigint[], %s::int[], %s::text[], %s::text[])
ORDER BY 1  -- one lock order for every writer: overlapping batches from two replicas cannot deadlock
ON CONFLICT (event_id) DO NOTHING
RETURNING event_id
"""


def to_us(ts: float) -> int:
    return round(ts * 1e6)


# How far before the position a caller passes baskets_of re-reads (see there).
RECORDED_MARGIN_S = 30.0
# A purchase `e` and each other purchase `o` of its basket (none: o's columns "").
PG_BASKETS = (
    "SELECT e.event_id, e.product_id, e.user_id, e.ts_us, COALESCE(o.event_id, ''), COALESCE(o.product_id, '') "
    "FROM events e LEFT JOIN events o ON o.user_id = e.user_id AND o.ts_us = e.ts_us AND o.kind = e.kind "
    "AND o.product_id <> e.product_id"
)


class PostgresEventStore(PostgresDatabase, EventStore):
    def __init__(self, dsn: str, pool_max: int = 8, timeout_s: float = 2.0) -> None:
        super().__init__(dsn, migrations.SCHEMA, pool_max, timeout_s)

    def append(self, events: Sequence[RecordedEvent]) -> tuple[int, int]:
        columns = (
            list(
                zip(
                    *[
                        (
                            e.event_id,
                            e.user_id,
                            e.event.product_id,
                            e.event.kind.value,
                            to_us(e.event.ts),
                            e.event.quantity,
                            e.attribution_token,
                            e.variant,
                        )
                        for e in events
                    ]
                )
            )
            or [[]] * 8
        )
        with self._transaction() as conn:
            inserted = {r[0] for r in conn.execute(INSERT, [list(c) for c in columns])}
            others = [e.event_id for e in events if e.event_id not in inserted]
            if others:
                stored = {
                    r[0]: tuple(r[1:])
                    for r in conn.execute(
                        "SELECT event_id, user_id, product_id, kind, quantity, attribution_token FROM events "
                        "WHERE event_id = ANY(%s)",
                        (others,),
                    )
                }
                if bad := conflicts(events, stored):
                    raise EventConflictError(bad)  # rolls the transaction back: nothing of the batch is stored
        return len(inserted), len(events) - len(inserted)

    def recent(self, user_id: str, limit: int = 200, kinds: Sequence[EventKind] = DEFAULT_KINDS) -> list[UserEvent]:
        with self._transaction() as conn:
            rows = conn.execute(
                "SELECT product_id, kind, ts_us, quantity FROM events WHERE user_id = %s AND kind = ANY(%s) "
                "ORDER BY ts_us DESC LIMIT %s",
                (user_id, [k.value for k in kinds], limit),
            ).fetchall()
        return [UserEvent(p, EventKind(k), us / 1e6, q) for p, k, us, q in reversed(rows)]

    def read_purchases(self) -> list[Purchase]:
        with self._transaction() as conn:
            rows = conn.execute(
                "SELECT user_id, product_id, ts_us, quantity, variant FROM events WHERE kind = %s ORDER BY ts_us",
                (EventKind.PURCHASE.value,),
            ).fetchall()
        return [(u, p, us / 1e6, q, v) for u, p, us, q, v in rows]

    def baskets_of(self, product_ids: Sequence[str], after: float = -1.0) -> tuple[list[BasketRow], float]:
        # Position = recorded_at (the inserting transaction's start): transactions commit out of that order, but
        # none runs longer than the statement timeout, so re-reading RECORDED_MARGIN_S before `after` misses none.
        with self._transaction() as conn:
            head = conn.execute("SELECT extract(epoch FROM now())").fetchone()[0]
            if not product_ids:
                return [], float(head)
            kind, ids = EventKind.PURCHASE.value, list(product_ids)
            if after < 0:
                rows = conn.execute(f"{PG_BASKETS} WHERE e.kind = %s AND e.product_id = ANY(%s)", (kind, ids))
            else:
                since = after - RECORDED_MARGIN_S
                rows = conn.execute(
                    f"{PG_BASKETS} WHERE e.recorded_at > to_timestamp(%s) AND e.kind = %s "
                    "AND e.product_id = ANY(%s) UNION ALL "
                    "SELECT e.event_id, e.product_id, e.user_id, e.ts_us, o.event_id, o.product_id FROM events o "
                    "JOIN events e ON e.user_id = o.user_id AND e.ts_us = o.ts_us AND e.kind = o.kind "
                    "AND e.product_id <> o.product_id WHERE o.recorded_at > to_timestamp(%s) AND o.kind = %s "
                    "AND e.product_id = ANY(%s)",
                    (since, kind, ids, since, kind, ids),
                )
            return [(e, p, u, us / 1e6, oe, o) for e, p, u, us, oe, o in rows.fetchall()], float(head)

    def read_attributed(self) -> list[Attributed]:
        with self._transaction() as conn:
            return [
                tuple(r)
                for r in conn.execute(
                    "SELECT attribution_token, variant, kind, product_id FROM events "
                    "WHERE attribution_token <> '' ORDER BY ts_us"
                ).fetchall()
            ]

    def prune(self, older_than: float) -> int:
        with self._transaction() as conn:
            return conn.execute("DELETE FROM events WHERE ts_us < %s", (to_us(older_than),)).rowcount

    def keep_response(self, response: ServedResponse) -> None:
        with self._transaction() as conn:
            conn.execute("SET LOCAL synchronous_commit = off")  # EventStore.keep_response: no flush on Search
            conn.execute(
                "INSERT INTO responses (response_id, created_us, body) VALUES (%s, %s, %s) "
                "ON CONFLICT (response_id) DO NOTHING",
                (response.response_id, to_us(response.created), response_body(response)),
            )

    def served_response(self, response_id: str) -> ServedResponse | None:
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT created_us, body FROM responses WHERE response_id = %s", (response_id,)
            ).fetchone()
        return response_from_body(response_id, row[0] / 1e6, row[1]) if row else None

    def prune_responses(self, older_than: float) -> int:
        with self._transaction() as conn:
            return conn.execute("DELETE FROM responses WHERE created_us < %s", (to_us(older_than),)).rowcount
