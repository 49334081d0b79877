"""The registry and the tuning loop: how a new model becomes a row of the table."""

from __future__ import annotations

import numpy as np
import pytest

from training.evaluate import registry
from training.evaluate.registry import Entry, load_registry, register
from training.evaluate.run import grid_points, tune


def test_baselines_are_registered_in_table_order() -> None:
    baselines = [
        "popularity",
        "personal_freq",
        "personal_decay",
        "itemknn",
        "als_mf",
        "lightgcn",
        "tifu_knn",
        "gp_topfreq",
        "repeat_explore",
    ]
    entries = load_registry()
    names = [n for n in entries if n in baselines]
    assert names == baselines
    assert all(entries[n].group == "baseline" for n in baselines)
    with pytest.raises(ValueError, match="group"):
        register("other", lambda: None, group="nonsense")


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


def test_best_baseline_is_chosen_by_test_ndcg_and_compared_pairwise() -> None:
    from training.evaluate.run import compare_with_best_baseline

    rng = np.random.default_rng(0)
    strong, weak = rng.uniform(0.2, 0.6, 50), rng.uniform(0.0, 0.2, 50)
    model = strong + 0.05
    rows = [
        {"model": "weak", "group": "baseline", "metrics": {"ndcg@20": weak.mean()}},
        {"model": "strong", "group": "baseline", "metrics": {"ndcg@20": strong.mean()}},
        {"model": "fused_rankers", "group": "model", "metrics": {"ndcg@20": model.mean()}},
    ]
    per_user = {"weak": weak, "strong": strong, "fused_rankers": model}
    result = compare_with_best_baseline(rows, per_user)
    assert result["baseline"] == "strong"
    assert result["difference"] == pytest.approx(0.05)
    assert result["difference_ci_low"] == pytest.approx(0.05) and result["difference_ci_high"] == pytest.approx(0.05)
    assert result["meets_target"] == (model.mean() / strong.mean() >= 1.10)
    assert compare_with_best_baseline(rows[:2], {"weak": weak, "strong": strong}) is None
