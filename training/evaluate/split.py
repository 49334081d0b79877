"""Temporal split: train on everything before a cut-off, evaluate on the customers who buy again in the window after.

Default (SplitConfig()): the test window is the final `window_days` days of the data, the validation window the
`window_days` days before it; each split trains on everything before its own cut-off (so the test split's train
set includes the validation window). Windows are whole days: `end` is midnight after the last purchase.

Evaluated customers ("returning customers") bought at least once in the window AND at least once before the
cut-off. Customers whose first purchase falls in the window are counted (new_customers) but not evaluated: without
history every model here reduces to popularity.

Ground truth = the set of products a customer bought in the window, repeats included: a product they had bought
before IS relevant (about half of what customers buy in two weeks is a re-purchase).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from libs.catalog import Dataset

# What a scorer may know about items: no whole-period counts (they would leak the future).
CATALOGUE_COLUMNS = ["product_id", "title", "price"]


@dataclass(frozen=True)
class SplitConfig:
    window_days: int = 14
    # Exclusive end of the test window, e.g. "2011-11-25". None: midnight after the last purchase in the data.
    end: str | None = None


@dataclass(frozen=True, eq=False)
class TrainData:
    """All a Scorer may see: purchases strictly before the cut-off, and the catalogue (ids, titles, prices)."""

    purchases: pd.DataFrame  # known customers: user_id, item_idx, invoice_no, ts, quantity, price, ...
    guest_sales: pd.DataFrame  # guest checkouts, same columns, user_id NA: for popularity only
    items: pd.DataFrame  # row i = item_idx i: product_id, title, price
    cutoff: pd.Timestamp

    @property
    def n_items(self) -> int:
        return len(self.items)


@dataclass(frozen=True, eq=False)
class Split:
    """One temporal split and its ground truth, rows aligned with `users`."""

    name: str
    cutoff: pd.Timestamp
    window_end: pd.Timestamp
    train: TrainData
    users: np.ndarray  # evaluated user ids (str), sorted
    truth: sp.csr_matrix  # bool [n_users, n_items]: bought in the window
    history: sp.csr_matrix  # bool [n_users, n_items]: bought before the cut-off
    new_customers: int  # bought in the window with no history: not evaluated
    window_purchases: int  # purchase rows (invoice x product) of evaluated users in the window

    @property
    def n_items(self) -> int:
        return self.train.n_items

    def describe(self) -> dict[str, object]:
        repeat = self.truth.multiply(self.history)
        return {
            "split": self.name,
            "train": f"< {self.cutoff.date()}",
            "window": f"{self.cutoff.date()} .. {(self.window_end - pd.Timedelta(days=1)).date()}",
            "train_purchases": len(self.train.purchases),
            "train_customers": int(self.train.purchases["user_id"].nunique()),
            "eval_users": len(self.users),
            "new_customers_not_evaluated": self.new_customers,
            "truth_pairs": int(self.truth.nnz),
            "truth_repeat_share": round(repeat.nnz / max(self.truth.nnz, 1), 4),
            "truth_items_unseen_in_train": round(self._unseen_share(), 4),
        }

    def _unseen_share(self) -> float:
        """Share of (user, item) truth pairs whose item nobody bought before the cut-off: no behaviour model can
        rank those above chance; a bound on every row of the table."""
        seen = np.zeros(self.n_items, dtype=bool)
        seen[self.train.purchases["item_idx"].to_numpy()] = True
        seen[self.train.guest_sales["item_idx"].to_numpy()] = True
        cols = self.truth.indices
        return float((~seen[cols]).mean()) if len(cols) else 0.0


def _bool_matrix(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    matrix = sp.csr_matrix((np.ones(len(rows), dtype=bool), (rows, cols)), shape=shape)
    matrix.sum_duplicates()
    return matrix


def make_split(
    purchases: pd.DataFrame,
    guest_sales: pd.DataFrame,
    items: pd.DataFrame,
    cutoff: pd.Timestamp | str,
    window_end: pd.Timestamp | str,
    name: str = "test",
) -> Split:
    """Split at `cutoff`; the window is [cutoff, window_end). Needs columns user_id, item_idx, ts."""
    cutoff, window_end = pd.Timestamp(cutoff), pd.Timestamp(window_end)
    if not cutoff < window_end:
        raise ValueError(f"cut-off {cutoff} must be before the window end {window_end}")
    before = purchases[purchases["ts"] < cutoff]
    window = purchases[(purchases["ts"] >= cutoff) & (purchases["ts"] < window_end)]
    returning = np.intersect1d(window["user_id"].unique(), before["user_id"].unique())
    users = np.sort(returning.astype(str))
    user_pos = pd.Index(users)
    n_items = len(items)

    in_eval = window[window["user_id"].isin(user_pos)]
    truth = _bool_matrix(
        user_pos.get_indexer(in_eval["user_id"]), in_eval["item_idx"].to_numpy(), (len(users), n_items)
    )
    known = before[before["user_id"].isin(user_pos)]
    history = _bool_matrix(user_pos.get_indexer(known["user_id"]), known["item_idx"].to_numpy(), (len(users), n_items))
    train = TrainData(
        purchases=before.reset_index(drop=True),
        guest_sales=guest_sales[guest_sales["ts"] < cutoff].reset_index(drop=True),
        items=items[[c for c in CATALOGUE_COLUMNS if c in items.columns]].reset_index(drop=True),
        cutoff=cutoff,
    )
    return Split(
        name=name,
        cutoff=cutoff,
        window_end=window_end,
        train=train,
        users=users,
        truth=truth,
        history=history,
        new_customers=int(window["user_id"].nunique() - len(users)),
        window_purchases=len(in_eval),
    )


def window_bounds(last_ts: pd.Timestamp, config: SplitConfig) -> tuple[pd.Timestamp, pd.Timestamp, pd.Timestamp]:
    """(validation cut-off, test cut-off, test window end) for data whose last purchase is `last_ts`."""
    end = pd.Timestamp(config.end) if config.end else pd.Timestamp(last_ts).normalize() + pd.Timedelta(days=1)
    window = pd.Timedelta(days=config.window_days)
    return end - 2 * window, end - window, end


def standard_splits(ds: Dataset, config: SplitConfig = SplitConfig()) -> tuple[Split, Split]:
    """(validation, test) splits of a prepared dataset; validation is only used to choose hyper-parameters."""
    last = ds.purchases["ts"].max()
    if len(ds.guest_sales):
        last = max(last, ds.guest_sales["ts"].max())
    val_cut, test_cut, end = window_bounds(last, config)
    validation = make_split(ds.purchases, ds.guest_sales, ds.items, val_cut, test_cut, name="validation")
    test = make_split(ds.purchases, ds.guest_sales, ds.items, test_cut, end, name="test")
    return validation, test
