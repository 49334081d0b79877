"""Temporal split: who is evaluated, what is relevant, what scorers may see."""

from __future__ import annotations

import pandas as pd
import pytest

from training.evaluate.split import SplitConfig, make_split, window_bounds
from tests.unit.training.conftest import GUESTS, PURCHASES, items_frame, purchases_frame


def test_evaluates_returning_customers_only(split) -> None:
    assert split.users.tolist() == ["A", "B"]
    assert split.new_customers == 1  # D
    assert split.window_purchases == 3


def test_ground_truth_includes_repeats(split) -> None:
    assert split.truth[0].indices.tolist() == [0, 1]  # A: 0 again (repeat) and 1 (new)
    assert split.truth[1].indices.tolist() == [5]
    assert split.history[0].indices.tolist() == [0, 3]
    assert split.history[1].indices.tolist() == [4, 5]


def test_scorers_see_only_the_past(split) -> None:
    train = split.train
    assert (train.purchases["ts"] < pd.Timestamp("2011-01-15")).all()
    assert len(train.purchases) == 6
    assert train.guest_sales["invoice_no"].tolist() == ["g1", "g2"]
    assert "n_orders" not in train.items.columns and train.n_items == 6


def test_window_end_is_exclusive_and_cutoff_inclusive() -> None:
    rows = [("A", 0, "1", "2011-01-01"), ("A", 1, "2", "2011-01-15 00:00"), ("A", 2, "3", "2011-01-29 00:00")]
    s = make_split(purchases_frame(rows), purchases_frame(GUESTS), items_frame(), "2011-01-15", "2011-01-29")
    assert s.truth[0].indices.tolist() == [1]


def test_describe_counts(split) -> None:
    d = split.describe()
    assert d["eval_users"] == 2 and d["truth_pairs"] == 3
    assert d["truth_repeat_share"] == pytest.approx(2 / 3, abs=1e-4)  # (A, 0) and (B, 5) were bought before
    assert d["window"] == "2011-01-15 .. 2011-01-28"


def test_default_windows_end_at_midnight_after_the_last_purchase() -> None:
    val_cut, test_cut, end = window_bounds(pd.Timestamp("2011-11-24 19:59"), SplitConfig())
    assert (str(val_cut), str(test_cut), str(end)) == (
        "2011-10-28 00:00:00",
        "2011-11-11 00:00:00",
        "2011-11-25 00:00:00",
    )
    _, test_cut, end = window_bounds(pd.Timestamp("2011-11-24"), SplitConfig(window_days=7, end="2011-12-01"))
    assert (str(test_cut), str(end)) == ("2011-11-24 00:00:00", "2011-12-01 00:00:00")


def test_rejects_an_empty_window() -> None:
    with pytest.raises(ValueError):
        make_split(purchases_frame(PURCHASES), purchases_frame(GUESTS), items_frame(), "2011-01-15", "2011-01-15")
