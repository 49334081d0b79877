"""PostgreSQL plumbing: a psycopg 3 connection pool, transactions, migrations under an advisory lock."""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg_pool import ConnectionPool

from libs.database import RETRY_AFTER_S
from libs.database.migrations import Schema, pending
from libs.errors import UnavailableError

log = logging.getLogger(__name__)

# pg_advisory_xact_lock key serialising migrations across replicas (any constant unique to this schema).
MIGRATION_LOCK = 0x73686F70  # "shop" in ASCII
# How long the pool keeps retrying one lost connection (its delays double: 1, 2, 4 ... s) before giving up; the next
# caller then starts a fresh attempt at once. psycopg_pool's default, 5 minutes, let the doubling delays outgrow
# an outage: after a 40 s outage the first write succeeded 21.9 s after the database was back.
RECONNECT_S = 4.0
# Connection trouble, server shutdown, deadlock/serialisation failures, disk full (class 53), pool timeouts,
# and a read-only server (a standby after failover): all transient from the caller's point of view.
TRANSIENT = (psycopg.OperationalError, psycopg.errors.ReadOnlySqlTransaction)


class PostgresDatabase:
    """Base of the PostgreSQL stores: `_transaction()` gives a pooled connection in a transaction."""

    def __init__(self, dsn: str, schema: Schema, pool_max: int = 8, timeout_s: float = 2.0) -> None:
        self._schema = schema
        self._pool = ConnectionPool(
            dsn,
            min_size=1,
            max_size=pool_max,
            timeout=timeout_s,
            open=True,
            name=schema.table,
            # A connection broken by a server restart is noticed on checkout, not by a caller's query.
            check=ConnectionPool.check_connection,
            reconnect_timeout=RECONNECT_S,
            kwargs={
                "connect_timeout": max(1, math.ceil(timeout_s)),
                "application_name": "shop-gateway",
                # synchronous_commit=on whatever the server default: OK means flushed to the WAL on disk.
                "options": f"-c synchronous_commit=on -c statement_timeout={int(timeout_s * 1000)}",
            },
        )
        self._migrate_lock = threading.Lock()
        self._migrated = False

    def close(self) -> None:
        self._pool.close()

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Connection]:
        """A pooled connection in a transaction (committed on exit), schema migrated; trouble -> Unavailable."""
        try:
            if not self._migrated:
                self._migrate()
            with self._pool.connection() as conn, conn.transaction():
                yield conn
        except TRANSIENT as exc:
            log.warning("%s unavailable: %s", self._schema.what, type(exc).__name__)
            raise UnavailableError(f"{self._schema.what} unavailable", RETRY_AFTER_S) from exc

    def _migrate(self) -> None:
        table = self._schema.table
        with self._migrate_lock, self._pool.connection() as conn, conn.transaction():
            if self._migrated:
                return
            # Held to the end of the transaction: a replica starting at the same time waits, then sees the rows.
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            conn.execute("SET LOCAL statement_timeout = 0")  # a migration may take longer than a request
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {table} (version INTEGER PRIMARY KEY, "
                "name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            applied = {v for (v,) in conn.execute(f"SELECT version FROM {table}")}
            for m in pending(self._schema.load("postgres"), applied):
                conn.execute(m.sql)  # several statements are allowed in one execute without parameters
                conn.execute(f"INSERT INTO {table} (version, name) VALUES (%s, %s)", (m.version, m.name))
                log.info("%s: applied migration %04d_%s", self._schema.what, m.version, m.name)
        self._migrated = True
