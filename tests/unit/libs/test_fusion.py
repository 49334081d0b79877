import json

import numpy as np
import pytest

from libs.fusion import Fusion, fit_normalisation, never_bought, spread


def test_combine_is_the_documented_linear_map():
    f = Fusion({"a": 0.25, "b": 0.75}, centre={"a": 1.0, "b": -2.0}, scale={"a": 2.0, "b": 0.5})
    a, b = np.array([[1.0, 3.0, 5.0]]), np.array([[-2.0, -1.0, 0.0]])
    want = 0.25 * (a - 1.0) / 2.0 + 0.75 * (b + 2.0) / 0.5
    assert np.allclose(f.combine({"a": a, "b": b}), want, atol=0, rtol=1e-15)


def test_an_items_score_does_not_depend_on_the_other_candidates():
    f = Fusion({"a": 0.5, "b": 0.5}, {"a": 0.3, "b": 1.0}, {"a": 1.5, "b": 4.0})
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=200), rng.normal(size=200)
    full = f.combine({"a": a, "b": b})
    page = f.combine({"a": a[:20], "b": b[:20]})  # explanation scores the page only
    assert np.array_equal(full[:20], page)


def test_masked_drop_is_the_weighted_sum_of_model_drops():
    f = Fusion({"a": 0.4, "b": 0.6}, {"a": 0.0, "b": 5.0}, {"a": 2.0, "b": 3.0})
    full = {"a": np.array([1.0, 2.0]), "b": np.array([7.0, 4.0])}
    masked = {"a": np.array([0.5, 2.5]), "b": np.array([6.0, 4.0])}
    drop = f.combine(full) - f.combine(masked)
    assert np.allclose(drop, 0.4 * (full["a"] - masked["a"]) / 2.0 + 0.6 * (full["b"] - masked["b"]) / 3.0)


def test_a_model_that_is_down_is_left_out():
    f = Fusion({"a": 0.7, "b": 0.3}, {"a": 1.0, "b": 0.0}, {"a": 2.0, "b": 1.0})
    a = np.array([1.0, 3.0])
    assert np.allclose(f.combine({"a": a}), 0.7 * (a - 1.0) / 2.0)
    with pytest.raises(ValueError):
        f.combine({"c": a})


def test_fit_normalisation_uses_valid_entries_only():
    s = np.array([[1.0, 3.0, -1e6], [5.0, 7.0, -1e6]])
    centre, scale = fit_normalisation({"a": s}, s > -1e5)
    assert centre["a"] == pytest.approx(4.0) and scale["a"] == pytest.approx(np.sqrt(5.0))
    centre, scale = fit_normalisation({"c": np.ones((2, 2))})
    assert scale["c"] == 1.0  # constant scores: no spread to divide by


def test_round_trip_and_stale_files_are_refused(tmp_path):
    f = Fusion({"a": 1.0}, {"a": 0.5}, {"a": 2.0}, explore_span=3.5)
    path = tmp_path / "fusion.json"
    path.write_text(json.dumps(f.as_dict() | {"fitted_on": "x"}))
    assert Fusion.load(path) == f
    for stale in ({"weights": {"a": 1.0}}, {"weights": {"a": 1.0}, "centre": {"a": 0.5}, "scale": {"a": 2.0}}):
        path.write_text(json.dumps(stale))
        with pytest.raises(ValueError, match="make models"):
            Fusion.load(path)


def test_discovery_term_is_the_setting_times_the_span_for_never_bought_products_only():
    f = Fusion({"a": 1.0}, explore_span=4.0)
    cand = np.array([3, 7, 9])
    new = never_bought(np.array([7, 7, 2]), cand)
    assert new.tolist() == [True, False, True]
    assert f.discovery(0.25, new).tolist() == [1.0, 0.0, 1.0]
    assert f.discovery(0.0, new).tolist() == [0.0, 0.0, 0.0]
    assert spread(np.arange(101.0)) == pytest.approx(98.0)  # 1st to 99th percentile
    assert spread(np.r_[np.zeros(500), np.ones(500), 1e6]) == pytest.approx(1.0)  # an outlier does not set it
    assert spread(np.array([2.0, 2.0])) == 1.0


def test_the_prior_is_one_more_term_and_never_fuses_alone():
    from libs.fusion import PRIOR

    f = Fusion({"a": 0.6, "b": 0.4, PRIOR: 0.1}, {"a": 1.0, "b": 0.0, PRIOR: -3.0}, {"a": 2.0, "b": 1.0, PRIOR: 2.0})
    a, b, p = np.array([1.0, 3.0]), np.array([0.5, -1.0]), np.array([0.0, -2.0])
    assert np.allclose(f.combine({"a": a, "b": b, PRIOR: p}), f.combine({"a": a, "b": b}) + 0.1 * (p + 3.0) / 2.0)
    assert np.allclose(f.term(PRIOR, p), 0.1 * (p + 3.0) / 2.0)
    assert np.array_equal(f.term("c", p), np.zeros(2))  # no weight: no term
    with pytest.raises(ValueError):  # the prior is blended with rankers, not served in their place
        f.combine({PRIOR: p})


def test_a_shelf_fuses_with_its_own_weights_and_the_same_normalisation(tmp_path):
    import json

    f = Fusion({"a": 0.5, "b": 0.5}, {"a": 1.0, "b": 0.0}, {"a": 2.0, "b": 4.0}, 3.0, {"DISCOVER": {"a": 1.0}})
    discover = f.for_shelf("DISCOVER")
    assert dict(discover.weights) == {"a": 1.0} and discover.centre == f.centre and discover.scale == f.scale
    assert discover.explore_span == 3.0
    assert f.for_shelf("BUY_AGAIN") is f  # no weights of its own: the mixed list's
    scores = {"a": np.array([3.0, 5.0]), "b": np.array([8.0, 0.0])}
    np.testing.assert_allclose(discover.combine(scores), [1.0, 2.0])
    path = tmp_path / "fusion.json"
    path.write_text(json.dumps(f.as_dict() | {"fitted_on": "validation"}))
    assert Fusion.load(path) == f
    blob = f.as_dict()
    del blob["shelves"]  # files from before per-shelf weights: every shelf ranks with the mixed list's
    assert Fusion.from_dict(blob).for_shelf("DISCOVER").weights == f.weights
