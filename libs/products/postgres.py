"""PostgreSQL backend of the product store: shared by every gateway replica."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from libs.database.postgres import PostgresDatabase
from libs.products.migrations import SCHEMA
from libs.products.store import SqlProductStore

# pg_advisory_xact_lock key serialising catalogue writers across replicas ("prod" in ASCII).
WRITE_LOCK = 0x70726F64


class PostgresProductStore(PostgresDatabase, SqlProductStore):
    """Shared by every gateway replica."""

    placeholder = "%s"

    def __init__(self, dsn: str, pool_max: int = 4, timeout_s: float = 2.0) -> None:
        super().__init__(dsn, SCHEMA, pool_max, timeout_s)

    @contextmanager
    def _write(self) -> Iterator:
        with self._transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
            yield conn

    def _read(self) -> AbstractContextManager:
        return self._transaction()
