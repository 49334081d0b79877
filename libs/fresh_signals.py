"""Keeps the new products' signals (libs.features.fresh) current in the ranking and explanation services.

Every `interval_s` it asks the event store for what was recorded since its last read about the catalogue's products
that the serving bundle does not know (their purchases and the other purchases of their baskets; one indexed query,
none while every product is in the bundle) and adds it to the counters; a product that just arrived in the
catalogue has its whole history read once (events recorded before it existed join then). Requests only read the
counters: no query on the request path.
Both services follow the same store at the same interval, so the scores explained match the scores served once both
have polled (within `interval_s` of a purchase).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import pandas as pd

from libs.errors import UnavailableError
from libs.events.base import EventStore
from libs.features.fresh import FreshSignals, NewProductRows
from libs.products.view import CatalogView

log = logging.getLogger(__name__)


class NewProductSignals:
    def __init__(self, events: EventStore, view: CatalogView) -> None:
        self.events = events
        self.view = view
        self.bundle_items: pd.Index | None = None  # the serving bundle's products (set when a bundle is built)
        self.signals = FreshSignals()
        self.followed: set[str] = set()  # new products whose purchases are counted
        self.position = -1.0  # EventStore.baskets_of's position after the last read

    def _read(self, joined: list[str]) -> tuple[list, float]:
        """Blocking: every purchase of the products just joined (they may have been recorded before the product
        arrived), and what was recorded for the others since the last read."""
        rows, position = [], self.position
        if joined:
            found, position = self.events.baskets_of(joined)
            rows += found
        if self.followed:
            found, position = self.events.baskets_of(sorted(self.followed), self.position)
            rows += found
        return rows, position

    async def refresh(self) -> int:
        """Count what is new; returns how many purchase pairs were."""
        if self.bundle_items is None:
            return 0
        joined = [p for p in self.view.products if p not in self.bundle_items and p not in self.followed]
        if not joined and not self.followed:
            return 0
        rows, position = await asyncio.to_thread(self._read, joined)
        self.followed.update(joined)
        self.position = position
        return self.signals.add(rows)  # on the event loop: requests never see half an update

    async def follow(self, interval_s: float = 0.5) -> None:
        down = False
        while True:
            try:
                await self.refresh()
                down = False
            except UnavailableError as exc:
                if not down:
                    log.warning("new products' signals not refreshed: %s", exc)
                down = True
            await asyncio.sleep(interval_s)

    def rows(self, product_ids: Sequence[str], item_index: pd.Index) -> NewProductRows:
        """A libs.scoring.NewSignals: the signals of `product_ids` as last counted."""
        return self.signals.rows(product_ids, item_index)
