"""PostgreSQL backend of the product store: shared by every gateway replica.

Every write transaction sends a notification on CHANNEL (delivered at its commit), and `wait_for_change` listens for
it on a connection of its own, so replicas following the catalogue wake as soon as a change is committed; their
poll interval is only the catch-up for a notification missed (listener reconnecting, database restarted).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

import psycopg

from libs.database.postgres import PostgresDatabase
from libs.products.migrations import SCHEMA
from libs.products.store import SqlProductStore

# pg_advisory_xact_lock key serialising catalogue writers across replicas ("prod" in ASCII).
WRITE_LOCK = 0x70726F64
CHANNEL = "shop_catalog_changes"

log = logging.getLogger(__name__)


class PostgresProductStore(PostgresDatabase, SqlProductStore):
    """Shared by every gateway replica."""

    placeholder = "%s"
    notifies = True

    def __init__(self, dsn: str, pool_max: int = 4, timeout_s: float = 2.0) -> None:
        super().__init__(dsn, SCHEMA, pool_max, timeout_s)
        self._dsn, self._timeout_s = dsn, timeout_s
        self._listener: psycopg.Connection | None = None
        self._listening = threading.Lock()  # one waiter at a time on the listener connection

    @contextmanager
    def _write(self) -> Iterator:
        with self._transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
            yield conn
            conn.execute("SELECT pg_notify(%s, '')", (CHANNEL,))  # delivered at commit, never for a rollback

    def wait_for_change(self, timeout_s: float) -> bool:
        start = time.monotonic()
        with self._listening:
            try:
                if self._listener is None or self._listener.closed:
                    self._listener = psycopg.connect(
                        self._dsn, autocommit=True, connect_timeout=max(1, math.ceil(self._timeout_s))
                    )
                    self._listener.execute(f"LISTEN {CHANNEL}")
                left = max(timeout_s - (time.monotonic() - start), 0.0)
                # Notifications that arrived since the last wait are buffered by psycopg and come at once.
                woken = any(True for _ in self._listener.notifies(timeout=left, stop_after=1))
                if woken:
                    for _ in self._listener.notifies(timeout=0):  # one wake-up for a burst of commits
                        pass
                return woken
            except psycopg.Error as exc:
                log.info("catalogue change listener down (%s): polling", type(exc).__name__)
                self._drop_listener()
        time.sleep(max(timeout_s - (time.monotonic() - start), 0.0))
        return False

    def _drop_listener(self) -> None:
        if self._listener is not None:
            try:
                self._listener.close()
            except psycopg.Error:
                pass
            self._listener = None

    def close(self) -> None:
        with self._listening:
            self._drop_listener()
        super().close()

    def _read(self) -> AbstractContextManager:
        return self._transaction()
