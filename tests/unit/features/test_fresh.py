"""New products' signals from their recorded purchases (libs.features.fresh) and how they reach the rankers' inputs
and the explanation's popularity fact (libs.scoring.with_new_signals, libs.explain.evidence.shop_orders)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from libs.explain.evidence import RECENT_DAYS, Fact, shop_orders
from libs.features import Pop, orders_in_window
from libs.features.fresh import FreshSignals
from libs.model_io import CAND_NBR_IDS, CAND_NBR_MASK, CAND_NBR_WEIGHT, ITEM_NEIGHBOURS, POP_FEATS, POP_FEATURES
from libs.scoring import with_new_signals

ITEMS = pd.Index(["A", "B", "C"])
ROWS = [  # (event, product, user, ts, other event, other product of the basket)
    ("e1", "NEW", "u1", 1.0, "e2", "A"),
    ("e1", "NEW", "u1", 1.0, "e3", "B"),
    ("e4", "NEW", "u1", 2.0, "e5", "A"),  # u1 again: a repeat buyer
    ("e6", "NEW", "u2", 1.0, "e7", "A"),
    ("e6", "NEW", "u2", 1.0, "e8", "OTHER-NEW"),  # not in the bundle: no neighbour
    ("e9", "NEW", "u3", 5.0, "", ""),
    ("e10", "ALSO", "u4", 1.0, "", ""),
]


def test_counts_orders_repeat_buyers_and_bundle_neighbours_once_however_often_rows_come():
    signals = FreshSignals.build(ROWS)
    assert signals.add(ROWS[:3]) == 0  # re-read rows count once
    assert signals.orders == {"NEW": 4, "ALSO": 1}
    rows = signals.rows(["A", "NEW", "UNSEEN"], ITEMS)
    assert rows.pop.shape == (3, POP_FEATURES) and not rows.pop[[0, 2]].any()
    # The count the rankers read back is the number of recorded orders, in every window.
    assert orders_in_window(rows.pop[1], 7) == orders_in_window(rows.pop[1], 28) == orders_in_window(rows.pop[1], None)
    assert orders_in_window(rows.pop[1], None) == 4
    assert np.isclose(rows.pop[1, Pop.ITEM_REPEAT_RATE], (1 + 1) / (3 + 4))
    # A (3 shared baskets) before B (1); OTHER-NEW is not a product of the bundle.
    assert rows.nbr_ids.shape == (3, ITEM_NEIGHBOURS)
    assert rows.nbr_ids[1, :3].tolist() == [1, 2, 0]
    assert np.allclose(rows.nbr_weight[1, :2], np.log1p([3, 1]))


def test_inputs_of_new_candidates_are_filled_and_the_rest_left_as_built():
    cand_idx = np.array([0, -1, 2])
    rows = FreshSignals.build(ROWS).rows(["A", "NEW", "C"], ITEMS)
    built = {
        POP_FEATS: np.full((1, 3, POP_FEATURES), 0.5, np.float32),
        CAND_NBR_IDS: np.ones((1, 3, ITEM_NEIGHBOURS), np.int64),
        CAND_NBR_WEIGHT: np.ones((1, 3, ITEM_NEIGHBOURS), np.float32),
        CAND_NBR_MASK: np.ones((1, 3, ITEM_NEIGHBOURS), np.float32),
    }
    built[POP_FEATS][0, 1] = 0.0
    built[CAND_NBR_IDS][0, 1] = 0
    out = with_new_signals(built, cand_idx, rows)
    assert np.array_equal(out[POP_FEATS][0, [0, 2]], built[POP_FEATS][0, [0, 2]])
    assert out[POP_FEATS][0, 1, Pop.LOG_ORDERS_ALL] > 0 and out[POP_FEATS][0, 1, Pop.LOG_SIMILAR_CUSTOMERS_SCORE] == 0
    assert out[CAND_NBR_IDS][0, 1, :2].tolist() == [1, 2] and out[CAND_NBR_MASK][0, 1].sum() == 2
    assert out[CAND_NBR_IDS][0, 0].tolist() == [1] * ITEM_NEIGHBOURS
    assert built[POP_FEATS][0, 1].sum() == 0  # the built inputs are not changed in place
    assert with_new_signals(built, cand_idx, None) is built


class _Store:
    pop = np.zeros((3, POP_FEATURES), np.float32)


def test_the_explanations_popularity_fact_counts_a_new_products_recorded_orders():
    rows = FreshSignals.build(ROWS).rows(["A", "NEW", "UNSEEN"], ITEMS)
    facts = shop_orders(_Store(), np.array([0, -1, -1]), rows.pop)
    assert facts == [Fact(count=0), Fact(count=4, window_days=RECENT_DAYS), Fact()]
    assert shop_orders(_Store(), np.array([-1]))[0] == Fact()


async def test_the_follower_reads_a_joined_products_history_once_then_only_what_is_new(tmp_path):
    from libs.domain import Availability, EventKind, Money, RecordedEvent, UserEvent
    from libs.events import SqliteEventStore
    from libs.fresh_signals import NewProductSignals
    from libs.products.model import ProductContent
    from libs.products.store import SqliteProductStore
    from libs.products.view import CatalogView

    def bought(event_id: str, user: str, product: str, ts: float) -> RecordedEvent:
        return RecordedEvent(event_id, user, UserEvent(product, EventKind.PURCHASE, ts, 1), "", "")

    events, products = SqliteEventStore(tmp_path / "e.sqlite3"), SqliteProductStore(tmp_path / "e.sqlite3")
    try:
        view = CatalogView(products)
        follower = NewProductSignals(events, view)
        follower.bundle_items = ITEMS
        events.append([bought("x1", "u1", "NEW", 1.0), bought("x2", "u1", "A", 1.0)])  # before NEW exists
        products.upsert([ProductContent("NEW", "NEW MUG", Money("GBP", 1, 0), Availability.IN_STOCK)], 1.0)
        await view.refresh()
        assert await follower.refresh() == 1 and follower.signals.orders == {"NEW": 1}  # joined: history read
        events.append([bought("x3", "u2", "NEW", 2.0), bought("x4", "u2", "B", 2.0), bought("x5", "u3", "A", 3.0)])
        assert await follower.refresh() == 1 and await follower.refresh() == 0
        rows = follower.rows(["NEW"], ITEMS)
        assert orders_in_window(rows.pop[0], None) == 2 and sorted(rows.nbr_ids[0, :2].tolist()) == [1, 2]
    finally:
        events.close()
        products.close()
