"""Popularity and co-purchase signals of products newer than the bundle, from their recorded purchases.

The bundle's FeatureStore counts only the dataset's purchases, so a product added to the catalogue later starts
with no popularity and no co-purchase neighbours, and a retrain was the only way to give it any. These signals
count its recorded purchases (libs.events.base.EventStore.baskets_of) the way the store counts the dataset's:
order lines (baskets holding it), and for neighbours the bundle's products bought in the same baskets.

Recorded purchases sit at the store's `now` on the models' clock (libs/history.py), so each counts in every window
(7 and 28 days, all time). Columns the recorded events cannot fill keep the store's "no signal" value: season 0,
repeat rate from its buyers as FeatureStore.build smooths it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from libs.features.popularity import ORDER_WINDOWS, Pop
from libs.model_io import ITEM_NEIGHBOURS, POP_FEATURES


@dataclass(frozen=True)
class NewProductRows:
    """Per candidate (rows of products the signals do not know are zero): what the rankers read for it."""

    pop: np.ndarray  # [C, POP_FEATURES] float32, the similar-customers column 0
    nbr_ids: np.ndarray  # [C, ITEM_NEIGHBOURS] int64 item_idx + 1 (0 = none)
    nbr_weight: np.ndarray  # [C, ITEM_NEIGHBOURS] float32 log1p(co-purchase count)


@dataclass
class FreshSignals:
    """Counters updated incrementally from EventStore.baskets_of rows; a pair of events seen before is skipped, so
    rows may be given again (a backend re-reads a margin)."""

    baskets: dict[str, set] = field(default_factory=dict)  # product -> its baskets (user, time)
    partners: dict[str, Counter] = field(default_factory=dict)  # product -> other product -> shared purchases
    seen: set = field(default_factory=set)  # (event id, other event id) pairs counted

    @classmethod
    def build(cls, rows: Sequence[tuple[str, str, str, float, str, str]]) -> "FreshSignals":
        signals = cls()
        signals.add(rows)
        return signals

    def add(self, rows: Sequence[tuple[str, str, str, float, str, str]]) -> int:
        """Count (event_id, product_id, user_id, ts, other event_id, other product_id) rows; returns how many were
        new."""
        added = 0
        for event, product, user, ts, other_event, other in rows:
            if (event, other_event) in self.seen:
                continue
            self.seen.add((event, other_event))
            added += 1
            self.baskets.setdefault(product, set()).add((user, ts))
            if other:
                self.partners.setdefault(product, Counter())[other] += 1
        return added

    @property
    def orders(self) -> dict[str, int]:
        return {p: len(b) for p, b in self.baskets.items()}

    def repeat_rate(self, product: str) -> float:
        """Share of its buyers with two or more baskets, smoothed as FeatureStore.build smooths it."""
        per_buyer = Counter(u for u, _ in self.baskets[product])
        return (sum(n >= 2 for n in per_buyer.values()) + 1.0) / (len(per_buyer) + 4.0)

    def rows(self, product_ids: Sequence[str], item_index: pd.Index) -> NewProductRows:
        """The signals of `product_ids`; neighbours are the bundle's products (`item_index`), most shared first."""
        c = len(product_ids)
        pop = np.zeros((c, POP_FEATURES), np.float32)
        ids = np.zeros((c, ITEM_NEIGHBOURS), np.int64)
        weight = np.zeros((c, ITEM_NEIGHBOURS), np.float32)
        for i, p in enumerate(product_ids):
            n = len(self.baskets.get(p, ()))
            if not n:
                continue
            for column, _, scale in ORDER_WINDOWS:
                pop[i, column] = np.log1p(n) / scale
            pop[i, Pop.ITEM_REPEAT_RATE] = self.repeat_rate(p)
            known = [(o, k) for o, k in self.partners.get(p, Counter()).items() if o in item_index]
            known.sort(key=lambda x: (-x[1], x[0]))
            for j, (o, k) in enumerate(known[:ITEM_NEIGHBOURS]):
                ids[i, j] = item_index.get_loc(o) + 1
                weight[i, j] = np.log1p(k)
        return NewProductRows(pop, ids, weight)
