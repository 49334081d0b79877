"""One replica's in-memory copy of the catalogue, kept current by following the store's change sequence.

Every replica reads "changes after my cursor" (one indexed query) as soon as the store says a change was committed
(PostgreSQL: LISTEN/NOTIFY) and at least every `interval_s` (the catch-up; SQLite: the only trigger), so a change
acknowledged by any replica is seen by all within about that interval, on PostgreSQL within a round trip; after a
restart the first poll reads the whole table (catch-up). With the database down the view keeps serving what it last
read, flagged `stale`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from libs.errors import UnavailableError
from libs.products.model import Product, ProductContent
from libs.products.store import ProductStore

log = logging.getLogger(__name__)

BATCH = 5000  # changes read per query while catching up


class CatalogView:
    def __init__(self, store: ProductStore) -> None:
        self.store = store
        self.products: dict[str, Product] = {}
        self.cursor = 0  # change_seq of the last change applied
        self.stale = True  # nothing read yet, or the last poll failed
        self._outage_logged = False
        self._waiter = ThreadPoolExecutor(1, thread_name_prefix="catalog-wait")  # follow's waits for changes
        self._refreshing = asyncio.Lock()  # one refresh at a time: two could apply their reads out of order
        # Called with each batch of changes as it is applied (on the event loop), e.g. to update search indexes.
        self.listeners: list[Callable[[Sequence[Product]], None]] = []

    async def is_fresh(self) -> bool:
        """A readiness check (libs.readiness): its last poll of the store succeeded."""
        return not self.stale

    def get(self, product_id: str) -> Product | None:
        return self.products.get(product_id)

    def page(self, after_id: str, limit: int) -> list[Product]:
        """ProductStore.page over this copy (ListProducts while the database is down; rare, so sorted per call)."""
        return [self.products[p] for p in sorted(p for p in self.products if p > after_id)[:limit]]

    def _read_changes(self) -> list[Product]:
        """Every change after the cursor (blocking; run in a thread)."""
        changes: list[Product] = []
        while True:
            batch = self.store.changes_after(changes[-1].change_seq if changes else self.cursor, BATCH)
            changes += batch
            if len(batch) < BATCH:
                return changes

    def _apply(self, changes: Sequence[Product]) -> None:
        for p in changes:
            self.products[p.product_id] = p
        if changes:
            self.cursor = changes[-1].change_seq
            for listener in self.listeners:
                listener(changes)
        self.stale = False

    def catch_up(self) -> int:
        """`refresh` for callers without an event loop (before serving); blocking."""
        changes = self._read_changes()
        self._apply(changes)
        return len(changes)

    async def refresh(self) -> int:
        """Apply every change after the cursor; returns how many. UnavailableError leaves the view as it was."""
        async with self._refreshing:
            try:
                changes = await asyncio.to_thread(self._read_changes)
            except UnavailableError:
                self.stale = True
                raise
            self._apply(changes)  # on the event loop: readers never see half a batch
            return len(changes)

    async def follow(self, interval_s: float = 0.5) -> None:
        """Refresh every `interval_s` until cancelled; database trouble is logged once per outage, not raised."""
        while True:
            try:
                await self.refresh()
            except UnavailableError as exc:
                if not self._outage_logged:
                    log.warning("catalogue view stale: %s", exc)
                self._outage_logged = True
            else:
                self._outage_logged = False
            if self.store.notifies:
                # Woken by a committed change (PostgreSQL's NOTIFY), at the latest after interval_s; on a thread of
                # its own, so the wait never holds one of the default executor's few threads.
                await asyncio.get_running_loop().run_in_executor(self._waiter, self.store.wait_for_change, interval_s)
            else:
                await asyncio.sleep(interval_s)

    async def unknown(self, product_ids: Sequence[str]) -> list[str]:
        """Those of `product_ids` the catalogue has no row for, asking the store about those this view lacks (it
        may lag a change another replica just made); with the store down, the view's answer."""
        missing = [p for p in dict.fromkeys(product_ids) if p not in self.products]
        if not missing:
            return []
        try:
            found = await asyncio.to_thread(self.store.known, missing)
        except UnavailableError:
            return missing
        return [p for p in missing if p not in found]

    async def titles(self, product_ids: Sequence[str]) -> dict[str, str]:
        """The titles of those of `product_ids` the catalogue has; reads the store's new changes first when this
        view lacks any (another replica may have just written them). A libs.scoring.NewTitles."""
        if any(p not in self.products for p in product_ids):
            try:
                await self.refresh()
            except UnavailableError:
                pass  # the view's answer
        return {p: self.products[p].content.title for p in product_ids if p in self.products}

    async def seed_and_follow(self, seed: Sequence[ProductContent], interval_s: float = 0.5) -> None:
        """Store the `seed` products the store has no row for (the prepared dataset on a first start; a no-op
        after), retrying while the database is down, then `follow`."""
        while True:
            try:
                seeded = await asyncio.to_thread(self.store.seed, seed, time.time())
                break
            except UnavailableError as exc:
                log.warning("catalogue not seeded yet: %s", exc)
                await asyncio.sleep(interval_s)
        if seeded:
            log.info("catalogue seeded with %d products", seeded)
        await self.follow(interval_s)
