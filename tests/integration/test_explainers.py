"""On the real served models (ONNX in process, the served Recommend and Search paths): Captum's FeatureAblation with
the all-masked baseline, over the presence game of training/evaluate/presence.py, equals the explanation service's
leave-one-out contributions to 1e-6; the game's all-present and all-masked rows are the service's score and
baseline; and one item runs through every compared explainer with its metrics."""

import asyncio

import numpy as np
import pytest

from libs.catalog.store import load_dataset
from libs.explain.core import ExplanationCore
from training.evaluate import explainers as ex
from training.evaluate.presence import build_game
from training.evaluate.served import ServedRecommend
from training.evaluate.split import standard_splits

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def setup():
    test = standard_splits(load_dataset())[1]
    served = ServedRecommend()
    served.fit(test.train)
    counting = ex.CountingInfer(served.ranking.infer)
    core = ExplanationCore(
        served.store, test.train.items["title"].tolist(), served.ranking.fusion, counting, served.ranking.encode
    )
    requests = ex.sample_requests(served, test, users=1, queries=1, per_page=2, seed=0)
    return served, core, counting, requests


def _game(served, core, request, product_id):
    store = served.store
    ctx = store.user_context(request.user_id or None)
    cand = np.array([store.item_index.get_loc(product_id)], np.int64)
    return asyncio.run(
        build_game(
            store,
            served.ranking.fusion,
            served.ranking.infer,
            ex.models_of(ex.VARIANT),
            ctx,
            cand,
            request.query,
            served.ranking.encode,
            core.matcher if request.query else None,
        )
    )


def test_feature_ablation_equals_the_service_explanation(setup):
    served, core, _, requests = setup
    assert {r.surface for r in requests} == {"recommend", "search"}
    product_ids = [str(p) for p in served.store.item_index]
    checked = 0
    for request in requests:
        for product_id in request.product_ids:
            game = _game(served, core, request, product_id)
            explained = asyncio.run(
                core.explain(request.user_id, request.query, [product_id], ex.VARIANT, [], 600.0, all_evidence=True)
            ).explanations[0]
            ours = ex.ours_vector(explained, game, product_ids)
            captum = ex.feature_ablation(game, 0)
            assert np.abs(captum - ours).max() < 1e-6, (request, product_id)
            score, baseline = game(np.vstack([np.ones(game.size), np.zeros(game.size)]))
            assert score == pytest.approx(explained.score, abs=1e-6)
            assert baseline == pytest.approx(explained.baseline, abs=1e-6)
            assert np.abs(ours).max() > 0  # the evidence moves the score: the comparison is not vacuous
            checked += 1
    assert checked == 4


def test_every_explainer_runs_on_a_served_search_result(setup):
    served, core, counting, requests = setup
    request = next(r for r in requests if r.surface == "search")
    item = ex.explain_item(served, core, counting, request, request.product_ids[0], seed=0)
    assert set(item.attributions) == set(ex.EXPLAINERS)
    m = item.pieces
    assert item.evaluations[ex.KERNEL] >= 2 * m + 2048 or item.evaluations[ex.KERNEL] >= 2**m - 2
    assert item.evaluations[ex.OURS] <= m + 3
    np.testing.assert_allclose(
        item.attributions[ex.OURS], item.attributions["Captum FeatureAblation"], rtol=0, atol=1e-6
    )
    for name, metrics in item.metrics.items():
        assert np.isfinite(metrics["deletion_auc"]) and np.isfinite(metrics["insertion_auc"]), name
