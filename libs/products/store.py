"""The product store: one interface, the SQL both backends run, and the two backends.

Every change of a product (create, content change, delete) gives its row the next value of the store's change
sequence. Writers hold the store's write lock from reading the sequence's head to their commit (SQLite: the
database's write lock; PostgreSQL: an advisory transaction lock), so changes become visible in sequence order and a
follower that has read everything up to N never later finds a change below N: "changes after N" is a safe cursor.
Catalogue writes are rare next to reads, so serialising them costs nothing that matters.
"""

from __future__ import annotations

import abc
import json
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path

from libs.config import StoreSettings
from libs.database.sqlite import SqliteDatabase
from libs.products.migrations import SCHEMA
from libs.products.model import Availability, DeleteResult, Money, Product, ProductContent, UpsertResult

COLUMNS = (
    "product_id, title, description, currency_code, price_units, price_nanos, availability, categories_json, "
    "create_us, update_us, change_seq"
)
UPSERT = f"""
INSERT INTO products ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (product_id) DO UPDATE SET title = excluded.title, description = excluded.description,
    currency_code = excluded.currency_code, price_units = excluded.price_units, price_nanos = excluded.price_nanos,
    availability = excluded.availability, categories_json = excluded.categories_json, update_us = excluded.update_us,
    change_seq = excluded.change_seq
"""


def _us(ts: float) -> int:
    return round(ts * 1e6)


def _row(p: Product) -> tuple:
    c = p.content
    return (
        c.product_id,
        c.title,
        c.description,
        c.price.currency_code,
        c.price.units,
        c.price.nanos,
        c.availability.value,
        json.dumps(list(c.categories)),
        _us(p.create_time),
        _us(p.update_time),
        p.change_seq,
    )


def _product(row: Sequence) -> Product:
    pid, title, description, currency, units, nanos, availability, categories, create_us, update_us, seq = row
    content = ProductContent(
        pid,
        title,
        Money(currency, int(units), int(nanos)),
        Availability(availability),
        description,
        tuple(json.loads(categories)),
    )
    return Product(content, create_us / 1e6, update_us / 1e6, int(seq))


class ProductStore(abc.ABC):
    """Thread-safe, blocking: call from asyncio via `asyncio.to_thread`.

    Database trouble (unreachable, locked, full, read-only) raises `libs.errors.UnavailableError`.
    """

    @abc.abstractmethod
    def upsert(self, products: Sequence[ProductContent], now: float) -> UpsertResult:
        """Store valid, distinct products in one durable transaction; unchanged ones keep their row as it is."""

    @abc.abstractmethod
    def delete(self, product_ids: Sequence[str], now: float) -> DeleteResult:
        """Mark the products DISCONTINUED; with any id unknown, change nothing and name them in the result."""

    @abc.abstractmethod
    def seed(self, products: Sequence[ProductContent], now: float) -> int:
        """Store the products the store has no row for (others untouched); returns how many were stored."""

    @abc.abstractmethod
    def get(self, product_id: str) -> Product | None: ...

    @abc.abstractmethod
    def page(self, after_id: str, limit: int) -> list[Product]:
        """Products with ids after `after_id` (store order), at most `limit`."""

    @abc.abstractmethod
    def changes_after(self, seq: int, limit: int) -> list[Product]:
        """Products whose last change is after `seq`, in change order, at most `limit`."""

    @abc.abstractmethod
    def known(self, product_ids: Sequence[str]) -> set[str]:
        """Those of `product_ids` the store has a row for."""

    notifies = False  # whether wait_for_change can return early (else followers just poll)

    def wait_for_change(self, timeout_s: float) -> bool:
        """Block until a writer may have changed the catalogue (True) or `timeout_s` passed (False); a follower's
        wait between polls. This store cannot tell, so it waits the whole time (followers poll)."""
        time.sleep(timeout_s)
        return False

    @abc.abstractmethod
    def close(self) -> None: ...


class SqlProductStore(ProductStore):
    """The SQL both backends share, written with `?` placeholders (PostgreSQL's `%s` substituted)."""

    placeholder = "?"

    @abc.abstractmethod
    def _write(self) -> AbstractContextManager:
        """A transaction holding the store's write lock."""

    @abc.abstractmethod
    def _read(self) -> AbstractContextManager: ...

    def _sql(self, sql: str) -> str:
        return sql if self.placeholder == "?" else sql.replace("?", self.placeholder)

    def _fetch(self, conn, product_ids: Sequence[str]) -> dict[str, Product]:
        if not product_ids:
            return {}
        marks = ",".join("?" * len(product_ids))
        rows = conn.execute(
            self._sql(f"SELECT {COLUMNS} FROM products WHERE product_id IN ({marks})"), list(product_ids)
        ).fetchall()
        return {r[0]: _product(r) for r in rows}

    def _head(self, conn) -> int:
        return int(conn.execute("SELECT COALESCE(MAX(change_seq), 0) FROM products").fetchone()[0])

    def _store(self, conn, products: list[Product]) -> None:
        if products:
            conn.cursor().executemany(self._sql(UPSERT), [_row(p) for p in products])

    def upsert(self, products: Sequence[ProductContent], now: float) -> UpsertResult:
        now = _us(now) / 1e6
        result = UpsertResult([])
        with self._write() as conn:
            stored = self._fetch(conn, [p.product_id for p in products])
            seq = self._head(conn)
            changed = []
            for content in products:
                old = stored.get(content.product_id)
                if old is not None and old.content == content:
                    result.unchanged += 1
                    result.products.append(old)
                    continue
                seq += 1
                product = Product(content, old.create_time if old else now, now, seq)
                changed.append(product)
                result.products.append(product)
                if old is None:
                    result.created += 1
                else:
                    result.updated += 1
            self._store(conn, changed)
        return result

    def delete(self, product_ids: Sequence[str], now: float) -> DeleteResult:
        now = _us(now) / 1e6
        result = DeleteResult()
        with self._write() as conn:
            stored = self._fetch(conn, product_ids)
            result.unknown = [p for p in product_ids if p not in stored]
            if result.unknown:
                return result
            seq = self._head(conn)
            changed = []
            for pid in product_ids:
                old = stored[pid]
                if old.content.availability is Availability.DISCONTINUED:
                    result.unchanged += 1
                    continue
                seq += 1
                content = ProductContent(
                    pid,
                    old.content.title,
                    old.content.price,
                    Availability.DISCONTINUED,
                    old.content.description,
                    old.content.categories,
                )
                changed.append(Product(content, old.create_time, now, seq))
            self._store(conn, changed)
            result.deleted = len(changed)
        return result

    def seed(self, products: Sequence[ProductContent], now: float) -> int:
        now = _us(now) / 1e6
        with self._write() as conn:
            present = {r[0] for r in conn.execute("SELECT product_id FROM products").fetchall()}
            seq = self._head(conn)
            new = [
                Product(c, now, now, seq + i + 1)
                for i, c in enumerate(c for c in products if c.product_id not in present)
            ]
            self._store(conn, new)
        return len(new)

    def get(self, product_id: str) -> Product | None:
        with self._read() as conn:
            return self._fetch(conn, [product_id]).get(product_id)

    def page(self, after_id: str, limit: int) -> list[Product]:
        with self._read() as conn:
            rows = conn.execute(
                self._sql(f"SELECT {COLUMNS} FROM products WHERE product_id > ? ORDER BY product_id LIMIT ?"),
                (after_id, limit),
            ).fetchall()
        return [_product(r) for r in rows]

    def changes_after(self, seq: int, limit: int) -> list[Product]:
        with self._read() as conn:
            rows = conn.execute(
                self._sql(f"SELECT {COLUMNS} FROM products WHERE change_seq > ? ORDER BY change_seq LIMIT ?"),
                (seq, limit),
            ).fetchall()
        return [_product(r) for r in rows]

    def known(self, product_ids: Sequence[str]) -> set[str]:
        if not product_ids:
            return set()
        marks = ",".join("?" * len(product_ids))
        with self._read() as conn:
            rows = conn.execute(
                self._sql(f"SELECT product_id FROM products WHERE product_id IN ({marks})"), list(product_ids)
            ).fetchall()
        return {r[0] for r in rows}


class SqliteProductStore(SqliteDatabase, SqlProductStore):
    """The embedded default; shares the event store's file (its own tables and migration history)."""

    def __init__(self, path: Path, timeout_s: float = 2.0) -> None:
        super().__init__(path, SCHEMA, timeout_s)

    def _write(self) -> AbstractContextManager:
        return self._transaction()  # BEGIN IMMEDIATE: the database's write lock

    def _read(self) -> AbstractContextManager:
        return self._session()


def open_catalog_store(settings: StoreSettings) -> ProductStore:
    """The catalogue every service of a deployment shares (SHOP_CATALOG_DSN, else SHOP_EVENTS_DSN, else SQLite)."""
    return open_product_store(settings.catalog_dsn_value, settings.sqlite_path, timeout_s=settings.events.timeout_s)


def open_product_store(dsn: str | None, sqlite_path: Path, pool_max: int = 4, timeout_s: float = 2.0) -> ProductStore:
    """PostgreSQL when `dsn` is set, else SQLite at `sqlite_path`. Connects lazily."""
    if dsn:
        from libs.products.postgres import PostgresProductStore  # psycopg is loaded only when selected

        return PostgresProductStore(dsn, pool_max, timeout_s)
    return SqliteProductStore(sqlite_path, timeout_s)
