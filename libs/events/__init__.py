"""Durable event store, one interface (`EventStore`) with two backends.

SQLite (`SqliteEventStore`) is the embedded default: one file per process, for `make run` and tests.
PostgreSQL (`PostgresEventStore`) is selected by a DSN and shared by every gateway replica. The gateway owns
the store; inner services receive a user's recent events in their requests; training reads `read_purchases`.
"""
from __future__ import annotations

import os
from pathlib import Path

from libs.events.base import EventConflictError, EventStore, event_time_problem
from libs.events.sqlite import SqliteEventStore

__all__ = ["EventConflictError", "EventStore", "SqliteEventStore", "event_time_problem", "open_event_store",
           "open_configured_store"]


def open_event_store(dsn: str | None, sqlite_path: Path, pool_max: int = 8, timeout_s: float = 2.0) -> EventStore:
    """PostgreSQL when `dsn` is set (postgresql://...), else SQLite at `sqlite_path`. Connects lazily."""
    if dsn:
        from libs.events.postgres import PostgresEventStore  # psycopg is loaded only when selected

        return PostgresEventStore(dsn, pool_max=pool_max, timeout_s=timeout_s)
    return SqliteEventStore(sqlite_path, timeout_s=timeout_s)


def open_configured_store(artifacts_dir: Path) -> tuple[EventStore, str]:
    """The store the gateway writes, for offline readers (retrain, A/B readout): SHOP_EVENTS_DSN, else SQLite at
    SHOP_EVENTS_DB or the gateway's default path. Returns (store, a description without credentials)."""
    dsn = os.environ.get("SHOP_EVENTS_DSN")
    path = Path(os.environ.get("SHOP_EVENTS_DB") or Path(artifacts_dir) / "events" / "events.sqlite3")
    return open_event_store(dsn, path), ("postgresql" if dsn else f"sqlite {path}")
