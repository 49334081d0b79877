"""The registry and the tuning loop: how a new model becomes a row of the table."""
from __future__ import annotations

import numpy as np
import pytest

from training.evaluate import registry
from training.evaluate.registry import Entry, load_registry, register
from training.evaluate.run import grid_points, tune


def test_baselines_are_registered_in_table_order() -> None:
    baselines = ["popularity", "personal_freq", "personal_decay", "itemknn", "als_mf", "lightgcn"]
    names = [n for n in load_registry() if n in baselines]
    assert names == baselines


def test_missing_plugin_module_is_skipped_but_broken_one_raises(monkeypatch) -> None:
    monkeypatch.setattr(registry, "PLUGIN_MODULES", ["training.evaluate.baselines", "training.no_such_module"])
    assert "popularity" in load_registry()
    monkeypatch.setattr(registry, "PLUGIN_MODULES", ["tests.unit.training.broken_plugin_does_not_exist"])
    load_registry()  # absent: skipped


def test_duplicate_names_are_refused(monkeypatch) -> None:
    monkeypatch.setattr(registry, "REGISTRY", {})
    register("x", lambda: None)
    with pytest.raises(ValueError, match="already registered"):
        register("x", lambda: 1)


def test_grid_points() -> None:
    assert grid_points({}) == [{}]
    assert grid_points({"a": [1, 2], "b": ["x"]}) == [{"a": 1, "b": "x"}, {"a": 2, "b": "x"}]


class _Oracle:
    """Scores the validation truth perfectly when `good`, else inverts it."""

    def __init__(self, good: bool):
        self.good = good

    def fit(self, train) -> None:
        self.train = train

    def score(self, user_ids):
        self.users = list(user_ids)
        return self.scores


def test_tune_picks_the_best_grid_point(split) -> None:
    truth = split.truth.toarray().astype(float)

    def factory(good: bool):
        model = _Oracle(good)
        model.scores = truth if good else -truth
        return model

    best, trials = tune(Entry("oracle", factory, {"good": [False, True]}), split)
    assert best == {"good": True}
    assert trials[1]["ndcg@20"] == pytest.approx(1.0) and trials[0]["ndcg@20"] < 1.0


def test_wrong_score_shape_is_reported(split) -> None:
    def factory(unused: int):
        model = _Oracle(True)
        model.scores = np.zeros((1, 2))
        return model

    with pytest.raises(ValueError, match="score\\(\\) returned"):
        tune(Entry("bad", factory, {"unused": [1]}), split)
