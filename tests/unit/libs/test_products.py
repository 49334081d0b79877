"""The living catalogue's pure rules (libs.products.model), and both product store backends running the same tests:
SQLite in tmp_path, PostgreSQL in a fresh database of a real server (see tests/postgres.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pandas as pd
import pytest

from libs.domain import Availability, Money
from libs.errors import InvalidArgumentError, NotFoundError, UnavailableError
from libs.products.catalog import Catalog, dataset_products
from libs.products.model import MAX_PER_CALL, ProductContent, check_delete, check_upsert
from libs.products.postgres import PostgresProductStore
from libs.products.store import ProductStore, SqliteProductStore, open_product_store
from libs.products.view import CatalogView
from tests import backends

GBP = Money("GBP", 2, 550_000_000)


def _p(
    pid: str = "85123A",
    title: str = "WHITE HANGING HEART T-LIGHT HOLDER",
    price: Money | None = GBP,
    availability: Availability | None = Availability.IN_STOCK,
    **kw,
) -> ProductContent:
    return ProductContent(pid, title, price, availability, **kw)


def _fields(exc: pytest.ExceptionInfo) -> list[str]:
    return [v.field for v in exc.value.violations]


# --- validation (pure) ---


def test_every_bad_field_is_named_with_its_index():
    with pytest.raises(InvalidArgumentError) as info:
        check_upsert(
            [
                _p("A1"),
                _p("A2", title="   "),
                _p("A3", title="x" * 201),
                _p("A4", title="bad\x00title"),
                _p("A5", price=Money("GBP", -1, 0)),
                _p("A6", price=Money("GBP", 0, -5)),
                _p("A7", price=Money("gbp", 1, 0)),
                _p("A8", price=None),
                _p("A9", availability=None),
                _p("A 10"),
                _p("A1"),
                _p("A12", categories=("ok", "")),
                _p("A13", price=Money("GBP", 1, 1_000_000_000)),
            ]
        )
    assert _fields(info) == [
        "products[1].title",
        "products[2].title",
        "products[3].title",
        "products[4].price.units",
        "products[5].price.nanos",
        "products[6].price.currency_code",
        "products[7].price",
        "products[8].availability",
        "products[9].product_id",
        "products[10].product_id",
        "products[11].categories[1]",
        "products[12].price.nanos",
    ]


def test_batch_bounds():
    with pytest.raises(InvalidArgumentError) as info:
        check_upsert([])
    assert _fields(info) == ["products"]
    with pytest.raises(InvalidArgumentError) as info:
        check_upsert([_p(f"P{i}") for i in range(MAX_PER_CALL + 1)])
    assert _fields(info) == ["products"]
    assert len(check_upsert([_p(f"P{i}") for i in range(MAX_PER_CALL)])) == MAX_PER_CALL
    with pytest.raises(InvalidArgumentError) as info:
        check_delete(["ok", "", "a\tb"])
    assert _fields(info) == ["product_ids[1]", "product_ids[2]"]


def test_stored_form_is_trimmed_and_deduplicated():
    (p,) = check_upsert([_p(title="  RED   LANTERN ", categories=(" lights", "lights", "home"))])
    assert p.title == "RED LANTERN" and p.categories == ("lights", "home")


def test_dataset_prices_become_exact_money():
    items = pd.DataFrame({"product_id": ["A", "B"], "title": ["T A", "T B"], "price": [2.55, 0.29]})
    assert [p.price for p in dataset_products(items)] == [Money("GBP", 2, 550_000_000), Money("GBP", 0, 290_000_000)]


# --- the store, both backends ---


@pytest.fixture(params=["sqlite", "postgres"])
def open_store(request, tmp_path) -> Iterator[Callable[[], ProductStore]]:
    """Opens a new store instance on one shared database per call: each call is another process/replica."""
    yield from backends.opener(request, tmp_path, SqliteProductStore, lambda dsn: PostgresProductStore(dsn, pool_max=4))


@pytest.fixture
def store(open_store) -> ProductStore:
    return open_store()


def test_upsert_is_idempotent_and_every_change_advances_the_sequence(store):
    first = store.upsert([_p("A"), _p("B")], now=10.0)
    assert (first.created, first.updated, first.unchanged) == (2, 0, 0)
    assert [p.change_seq for p in first.products] == [1, 2]
    again = store.upsert([_p("A"), _p("B")], now=20.0)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    assert again.products == first.products  # nothing rewritten: same times, same sequence
    repriced = store.upsert([_p("B", price=Money("GBP", 3, 0)), _p("A")], now=30.0)
    assert (repriced.created, repriced.updated, repriced.unchanged) == (0, 1, 1)
    b = store.get("B")
    assert b.content.price == Money("GBP", 3, 0) and b.change_seq == 3
    assert (b.create_time, b.update_time) == (10.0, 30.0)
    assert [p.product_id for p in store.changes_after(1, 10)] == ["B"]
    assert store.changes_after(3, 10) == []


def test_content_reads_back_exactly(store):
    sent = _p(
        "Ü-1",
        title="CAFÉ “LANTERN”",
        description="Glass.\nTwo sizes.",
        categories=("home", "lights"),
        price=Money("EUR", 999_999_999, 999_999_999),
        availability=Availability.OUT_OF_STOCK,
    )
    store.upsert([sent], now=1.5)
    assert store.get("Ü-1").content == sent
    assert store.get("missing") is None


def test_delete_keeps_the_row_discontinued_and_refuses_unknown_ids_whole(store):
    store.upsert([_p("A"), _p("B")], now=1.0)
    refused = store.delete(["A", "NOPE"], now=2.0)
    assert refused.unknown == ["NOPE"] and store.get("A").content.availability is Availability.IN_STOCK
    done = store.delete(["A"], now=3.0)
    assert (done.deleted, done.unchanged) == (1, 0)
    a = store.get("A")
    assert a.content.availability is Availability.DISCONTINUED and a.content.title == _p().title
    assert a.change_seq == 3
    assert (store.delete(["A"], now=4.0).unchanged, store.get("A").change_seq) == (1, 3)
    assert store.upsert([_p("A")], now=5.0).updated == 1  # an upsert brings it back


def test_seed_stores_only_missing_products_and_is_idempotent(store):
    store.upsert([_p("A", title="EDITED")], now=1.0)
    assert store.seed([_p("A"), _p("B"), _p("C")], now=2.0) == 2
    assert store.seed([_p("A"), _p("B"), _p("C")], now=3.0) == 0
    assert store.get("A").content.title == "EDITED"
    assert [p.change_seq for p in store.changes_after(0, 10)] == [1, 2, 3]


def test_pages_cover_every_product_once(store):
    store.upsert([_p(f"P{i:02d}") for i in range(25)], now=1.0)
    seen, after = [], ""
    while page := store.page(after, 10):
        seen += [p.product_id for p in page]
        after = page[-1].product_id
    assert seen == [f"P{i:02d}" for i in range(25)]
    assert store.known(["P01", "X", "P24"]) == {"P01", "P24"}


def test_concurrent_writers_on_two_replicas_get_distinct_increasing_sequences(open_store):
    replicas = [open_store(), open_store()]
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for i in range(20):
                replicas[n].upsert([_p(f"R{n}-{i}"), _p(f"R{n}-{i}b")], now=float(i))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    seqs = [p.change_seq for p in replicas[0].changes_after(0, 1000)]
    assert seqs == list(range(1, 81))


async def test_view_follows_changes_of_another_replica(open_store):
    writer, reader = open_store(), open_store()
    writer.seed([_p("A"), _p("B")], now=1.0)
    view = CatalogView(reader)
    assert await view.refresh() == 2 and view.cursor == 2 and not view.stale
    writer.upsert([_p("B", availability=Availability.OUT_OF_STOCK)], now=2.0)
    assert await view.refresh() == 1
    assert not view.get("B").servable and view.get("A").servable and view.cursor == 3
    assert await view.refresh() == 0
    writer.upsert([_p("NEW")], now=3.0)
    # A product another replica just stored is known before this view polls.
    assert await view.unknown(["NEW", "NONE", "A"]) == ["NONE"]


# --- Catalog (the service logic) ---


async def test_catalog_pages_tokens_and_errors(tmp_path):
    store = SqliteProductStore(tmp_path / "c.sqlite3")
    view = CatalogView(store)
    catalog = Catalog(store, view)
    try:
        await catalog.upsert([_p(f"P{i}") for i in range(5)])
        assert view.get("P4") is not None  # this replica serves a write when it acknowledges it
        first, token, stale = await catalog.list(3, "")
        second, last, _ = await catalog.list(3, token)
        assert not stale
        assert [p.product_id for p in first + second] == [f"P{i}" for i in range(5)] and last == ""
        with pytest.raises(InvalidArgumentError) as info:
            await catalog.list(3, "not a token")
        assert _fields(info) == ["page_token"]
        with pytest.raises(NotFoundError):
            await catalog.get("P9")
        with pytest.raises(InvalidArgumentError) as info:
            await catalog.delete(["P1", "P9", "P9"])
        assert _fields(info) == ["product_ids[1]"]
        assert store.get("P1").content.availability is Availability.IN_STOCK  # nothing changed
        with pytest.raises(InvalidArgumentError):
            await catalog.upsert([_p("P1", title="NEW TITLE"), _p("P2", price=Money("GBP", -1))])
        assert store.get("P1").content.title == _p().title  # all or nothing
    finally:
        store.close()


class _Down(SqliteProductStore):
    """A store whose database can be switched off (every call UnavailableError), as a refused PostgreSQL is."""

    down = False

    def _session(self):
        if self.down:
            raise UnavailableError("product store unavailable")
        return super()._session()


async def test_catalog_with_its_database_down_reads_the_views_copy_flagged_and_refuses_writes(tmp_path):
    store = _Down(tmp_path / "c.sqlite3")
    view = CatalogView(store)
    catalog = Catalog(store, view)
    try:
        await catalog.upsert([_p(f"P{i}") for i in range(5)])
        store.down = True
        assert await catalog.get("P3") == (view.get("P3"), True)
        first, token, stale = await catalog.list(3, "")
        second, last, _ = await catalog.list(3, token)
        assert stale and [p.product_id for p in first + second] == [f"P{i}" for i in range(5)] and last == ""
        with pytest.raises(UnavailableError):
            await catalog.get("P9")  # not in the copy: unknown, not NOT_FOUND
        with pytest.raises(UnavailableError):
            await catalog.upsert([_p("P1", title="NEW TITLE"), _p("P7")])
        with pytest.raises(UnavailableError):
            await catalog.delete(["P1"])
        store.down = False
        assert store.get("P1").content.title == _p().title and store.get("P7") is None  # nothing half-written
        assert await catalog.get("P1") == (store.get("P1"), False)
    finally:
        store.close()


def test_sqlite_trouble_is_unavailable(tmp_path):
    store = SqliteProductStore(tmp_path / "c.sqlite3")
    store.upsert([_p("A")], now=1.0)
    store._conn.execute("PRAGMA query_only = ON")  # as a read-only file would (root ignores chmod)
    with pytest.raises(UnavailableError):
        store.upsert([_p("B")], now=2.0)
    store._conn.execute("PRAGMA query_only = OFF")
    assert store.get("A").content == _p("A")
    store.close()


def test_unreachable_postgres_is_unavailable():
    store = open_product_store("postgresql://postgres@127.0.0.1:1/shop", None, timeout_s=0.5)
    try:
        with pytest.raises(UnavailableError):
            store.get("A")
    finally:
        store.close()


def test_postgres_wakes_a_follower_at_a_committed_change_and_sqlite_waits_out_the_interval(open_store):
    writer, follower = open_store(), open_store()
    writer.seed([_p("A")], now=1.0)
    notifies = isinstance(follower, PostgresProductStore)
    follower.wait_for_change(0.2)  # listening from here (the seed's notification, if any, is drained)
    done: list[tuple[bool, float]] = []

    def wait() -> None:
        start = time.monotonic()
        done.append((follower.wait_for_change(3.0 if notifies else 0.3), time.monotonic() - start))

    thread = threading.Thread(target=wait)
    thread.start()
    time.sleep(0.1)
    writer.upsert([_p("B")], now=2.0)
    thread.join()
    woken, waited = done[0]
    if notifies:
        assert woken and waited < 1.0  # at the commit, not after the 3 s interval
        assert follower.wait_for_change(0.2) is False  # nothing committed since
    else:
        assert not woken and waited >= 0.3
