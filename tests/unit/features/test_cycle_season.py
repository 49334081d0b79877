"""Repurchase-cycle and year-over-year season features: pure functions, hand-computed expectations."""

import math

import numpy as np
import pandas as pd
import pytest

from libs.features import (
    FeatureStore,
    REPEAT_FEATURE_NAMES,
    POP_FEATURE_NAMES,
    UserContext,
    cycle_features,
    item_repurchase_cycle,
    repeat_features,
    season_features,
)
from libs.features.popularity import DAY
from libs.model_io import POP_FEATURES, REPEAT_FEATURES
from tests.unit.features import synthetic

COL = {name: j for j, name in enumerate(REPEAT_FEATURE_NAMES)}
POP = {name: j for j, name in enumerate(POP_FEATURE_NAMES)}


def test_widths_match_model_io():
    assert len(REPEAT_FEATURE_NAMES) == REPEAT_FEATURES == 11
    assert len(POP_FEATURE_NAMES) == POP_FEATURES == 7


def test_item_cycle_is_median_gap_pooled_over_customers():
    # item 0: user a at days 0, 10, 40 (gaps 10, 30); user b at days 5, 25 (gap 20) -> median of 10, 20, 30 = 20
    # item 1: bought once by a, once by b -> unknown; item 2: user b twice within an hour -> floored to 1 day
    # item 3: never bought
    users = np.array(["a", "a", "a", "b", "b", "a", "b", "b", "b"])
    items = np.array([0, 0, 0, 0, 0, 1, 1, 2, 2])
    days = np.array([0, 10, 40, 5, 25, 3, 4, 50, 50.02])
    cyc = item_repurchase_cycle(users, items, days * DAY, 4)
    assert cyc[0] == pytest.approx(20.0)
    assert np.isnan(cyc[1]) and np.isnan(cyc[3])
    assert cyc[2] == pytest.approx(1.0)


def test_item_cycle_ignores_order_and_duplicates():
    users = np.array(["a", "a", "a"])
    items = np.array([0, 0, 0])
    days = np.array([30.0, 0.0, 30.0])  # the same purchase twice, unsorted: one gap of 30 days
    assert item_repurchase_cycle(users, items, days * DAY, 1)[0] == pytest.approx(30.0)
    assert np.isnan(item_repurchase_cycle(users[:0], items[:0], days[:0], 1)).all()


def test_cycle_features_hand_values():
    log_age, due = cycle_features(np.array([20.0, 10.0, 40.0, np.inf, 5.0]), np.array([20.0, 20.0, 20.0, 20.0, np.nan]))
    assert log_age[0] == pytest.approx(math.log(2) / 3)  # age = cycle: log1p(1) / 3
    assert due[0] == pytest.approx(1.0)
    assert due[1] == pytest.approx(math.exp(-0.5 * math.log(0.5) ** 2))  # half the cycle: 0.7865
    assert due[2] == pytest.approx(math.exp(-0.5 * math.log(2.0) ** 2))  # twice the cycle: same
    assert log_age[2] == pytest.approx(math.log1p(2.0) / 3)
    assert log_age[3] == due[3] == 0.0  # never bought
    assert log_age[4] == due[4] == 0.0  # cycle unknown


def test_repeat_features_cycle_columns():
    # Bought item 3 at days -30, -20, -10 (own cycle (30 - 10) / 2 = 10 days), item 4 once at day -10.
    now = 100 * DAY
    ctx = UserContext(np.array([3, 3, 4, 3]), np.array([70, 80, 90, 90]) * DAY, np.array([0, 1, 2, 2]), now)
    item_cycle = np.full(6, np.nan)
    item_cycle[3], item_cycle[4] = 5.0, 40.0
    r = repeat_features(ctx, np.array([3, 4, 5, -1]), item_cycle)
    assert r[0, COL["log_age_over_item_cycle"]] == pytest.approx(math.log1p(10 / 5) / 3, rel=1e-5)
    assert r[0, COL["due_by_item_cycle"]] == pytest.approx(math.exp(-0.5 * math.log(2.0) ** 2), rel=1e-5)
    assert r[0, COL["log_age_over_own_cycle"]] == pytest.approx(math.log(2) / 3, rel=1e-5)  # age 10 = own cycle
    assert r[0, COL["due_by_own_cycle"]] == pytest.approx(1.0, rel=1e-5)
    assert r[1, COL["log_age_over_item_cycle"]] == pytest.approx(math.log1p(10 / 40) / 3, rel=1e-5)
    assert r[1, COL["log_age_over_own_cycle"]] == 0.0 and r[1, COL["due_by_own_cycle"]] == 0.0  # bought once
    assert not r[2].any() and not r[3].any()  # never bought / unknown product: all zero
    # Without the store's item cycles the item columns are 0, the own ones unchanged.
    bare = repeat_features(ctx, np.array([3]))
    assert bare[0, COL["due_by_item_cycle"]] == 0.0 and bare[0, COL["due_by_own_cycle"]] == pytest.approx(1.0)


def test_season_windows_a_year_back_and_coverage():
    now = 400 * DAY
    # anchor = now - 365 d = day 35: window 1 = [21, 49), window 2 = [35, 63)
    items = np.array([0, 0, 1, 1, 1, 2, 0])
    days = np.array([20.9, 21.0, 40.0, 48.9, 62.9, 63.0, 399.0])
    out = season_features(items, days * DAY, now, 3, data_start_s=0.0)
    assert out[0, 0] == pytest.approx(math.log1p(1) / 6.0)  # day 21 only (20.9 is before, 399 is now-ish)
    assert out[1, 0] == pytest.approx(math.log1p(2) / 6.0)  # days 40 and 48.9
    assert out[1, 1] == pytest.approx(math.log1p(3) / 6.0)  # 40, 48.9, 62.9
    assert out[2].tolist() == [0.0, 0.0]  # day 63 is outside both
    assert out[0, 1] == 0.0
    # Data starting on day 30 covers window 2 (from day 35) but not window 1 (from day 21): that one is 0.
    partial = season_features(items, days * DAY, now, 3, data_start_s=30.5 * DAY)
    assert partial[:, 0].tolist() == [0.0, 0.0, 0.0] and partial[1, 1] == pytest.approx(math.log1p(3) / 6.0)
    # Less than a year of data: nothing.
    assert not season_features(items, days * DAY, now, 3, data_start_s=36 * DAY).any()


def test_store_build_fills_cycles_and_season_without_leakage():
    p = synthetic.purchases()
    store = FeatureStore.build(p, synthetic.item_embeddings(), synthetic.NOW)
    assert store.item_cycle.shape == (synthetic.N_ITEMS,) and store.pop.shape == (synthetic.N_ITEMS, POP_FEATURES)
    # The synthetic data spans 120 days: no year-ago window is covered.
    assert not store.pop[:, POP["log_orders_year_ago_28d"] : POP["log_orders_year_ago_next_28d"] + 1].any()
    # A purchase at or after `now` changes nothing (features come from data before the cut-off only).
    later = pd.DataFrame(
        [
            {
                "user_id": "42",
                "item_idx": 4,
                "product_id": "P4",
                "invoice_no": "9999",
                "ts": synthetic.NOW + pd.Timedelta(days=1),
                "quantity": 1,
            }
        ]
    )
    store2 = FeatureStore.build(pd.concat([p, later]), synthetic.item_embeddings(), synthetic.NOW)
    np.testing.assert_array_equal(store.item_cycle, store2.item_cycle)
    np.testing.assert_array_equal(store.pop, store2.pop)
    # User 42 bought item 3 ten and two days ago: own cycle 8 days, last 2 days ago.
    r = repeat_features(store.user_context("42"), np.array([3]), store.item_cycle)
    assert r[0, COL["log_age_over_own_cycle"]] == pytest.approx(math.log1p(2 / 8) / 3, rel=1e-5)
    assert r[0, COL["due_by_own_cycle"]] == pytest.approx(math.exp(-0.5 * math.log(0.25) ** 2), rel=1e-5)
