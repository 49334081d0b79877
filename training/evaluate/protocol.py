"""The contract every evaluated model meets: fit on a train split, then score the whole catalogue per user."""

from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from training.evaluate.split import TrainData


@runtime_checkable
class Scorer(Protocol):
    """A recommender under evaluation.

    fit: learn from `train` only (purchases and guest sales strictly before `train.cutoff`, the catalogue).
    score: a float array [len(user_ids), train.n_items], higher = better, for every item of the catalogue (full
    ranking: no candidate sampling). Users unknown to the model must still get a row (e.g. popularity). Equal
    scores are ordered by item index by the metrics, so break ties that matter to you yourself.
    """

    def fit(self, train: TrainData) -> None: ...

    def score(self, user_ids: Sequence[str]) -> np.ndarray: ...


@runtime_checkable
class Searcher(Protocol):
    """A search engine under the personalised-search PROXY protocol (see search_proxy.py).

    search: the best `k` item indices for a text query, best first; `user_id` None = unpersonalised.
    """

    def fit(self, train: TrainData) -> None: ...

    def search(self, query: str, user_id: str | None, k: int) -> np.ndarray: ...
