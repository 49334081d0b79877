"""Durable event store, one interface (`EventStore`) with two backends.

SQLite (`SqliteEventStore`) is the embedded default: one file per process, for `make run` and tests.
PostgreSQL (`PostgresEventStore`) is selected by a DSN and shared by every gateway replica. The gateway owns
the store; inner services receive a user's recent events in their requests; training reads `read_purchases`.
"""

from __future__ import annotations

from pathlib import Path

from libs.config import EventStoreSettings
from libs.events.base import EventConflictError, EventStore, event_time_problem
from libs.events.sqlite import SqliteEventStore

__all__ = ["EventConflictError", "EventStore", "SqliteEventStore", "describe", "event_time_problem", "open_event_store"]


def open_event_store(settings: EventStoreSettings, artifacts_dir: Path) -> EventStore:
    """PostgreSQL when settings.dsn is set (postgresql://...), else SQLite at settings.sqlite_path. Connects
    lazily. The gateway writes it; offline readers (retrain, A/B readout) open the same one."""
    if settings.dsn:
        from libs.events.postgres import PostgresEventStore  # psycopg is loaded only when selected

        return PostgresEventStore(
            settings.dsn.get_secret_value(), pool_max=settings.pool_max, timeout_s=settings.timeout_s
        )
    return SqliteEventStore(settings.sqlite_path(artifacts_dir), timeout_s=settings.timeout_s)


def describe(settings: EventStoreSettings, artifacts_dir: Path) -> str:
    """Which store `open_event_store` opens, without credentials."""
    return "postgresql" if settings.dsn else f"sqlite {settings.sqlite_path(artifacts_dir)}"
