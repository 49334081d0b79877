"""Fresh events on the serving clock.

The dataset ends on 2011-11-24, while events recorded through the gateway carry today's wall-clock time. The
rankers' recency features are relative to the feature store's `now` (the end of the data), so fresh events are
anchored there: they count as the newest purchases, in the order they happened, a second apart. One place for
this rule, used by retrieval, ranking and explanation alike.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from libs.domain import EventKind, UserEvent
from libs.features import FeatureStore, UserContext

HISTORY_KINDS = (EventKind.PURCHASE,)


def fresh_purchases(store: FeatureStore, recent: Sequence[UserEvent]) -> list[tuple[str, float]]:
    """(product_id, time on the store's clock) for recorded purchases of known products, oldest first."""
    known = store.item_index if store.item_index is not None else pd.Index([])
    events = sorted((e for e in recent if e.kind in HISTORY_KINDS and e.product_id in known), key=lambda e: e.ts)
    return [(e.product_id, store.now + i) for i, e in enumerate(events)]


def user_context(store: FeatureStore, user_id: str, recent: Sequence[UserEvent] = ()) -> UserContext:
    """The user's purchase history as the models read it at request time (dataset + recorded events)."""
    return store.user_context(user_id or None, fresh=fresh_purchases(store, recent))
