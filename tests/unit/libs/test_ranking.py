import numpy as np
import pytest

from libs import domain as d
from libs.errors import InvalidArgumentError, UnavailableError
from libs.rankers.gnn_ranker import NAME as GNN_RANKER
from libs.rankers.transformer_ranker import NAME as TRANSFORMER_RANKER
from libs.ranking import RankingCore
from libs.relevance import RELEVANCE
from libs.diversity import mmr_order
from tests.unit import fakes


async def _versions(model: str) -> str:
    return "1"


def _core(rankers: fakes.FakeRankers) -> RankingCore:
    return RankingCore(fakes.store(), fakes.TITLES, fakes.FUSION, rankers.infer, fakes.encode, _versions)


async def test_ranks_by_fused_score_with_per_model_scores():
    rankers = fakes.FakeRankers()
    ranked = await _core(rankers).rank("1", "", fakes.PRODUCTS, 3, "fused", 0.0, [], 1.0)
    assert len(ranked.items) == 3 and ranked.degradations == []
    assert ranked.items[0].product_id == "A"  # bought twice: repeat features dominate
    fused = [i.score for i in ranked.items]
    assert fused == sorted(fused, reverse=True)
    assert set(ranked.items[0].model_scores) == {GNN_RANKER, TRANSFORMER_RANKER, "fused"}
    assert rankers.calls == {GNN_RANKER: 1, TRANSFORMER_RANKER: 1}
    assert {v.name for v in ranked.versions} == {GNN_RANKER, TRANSFORMER_RANKER}


async def test_one_model_down_answers_with_the_other_and_flags_it():
    ranked = await _core(fakes.FakeRankers(down=(GNN_RANKER,))).rank("1", "", fakes.PRODUCTS, 0, "fused", 0, [], 1.0)
    assert len(ranked.items) == len(fakes.PRODUCTS)
    assert [(x.stage, x.model) for x in ranked.degradations] == [(d.Stage.RANKING, GNN_RANKER)]
    assert set(ranked.items[0].model_scores) == {TRANSFORMER_RANKER, "fused"}


async def test_all_models_down_is_unavailable():
    with pytest.raises(UnavailableError):
        await _core(fakes.FakeRankers(down=(GNN_RANKER, TRANSFORMER_RANKER))).rank("1", "", ["A"], 0, "", 0, [], 1.0)


async def test_variant_selects_models():
    rankers = fakes.FakeRankers()
    await _core(rankers).rank("1", "", fakes.PRODUCTS, 0, "gnn_only", 0, [], 1.0)
    assert rankers.calls == {GNN_RANKER: 1}


async def test_bad_inputs_name_the_field():
    core = _core(fakes.FakeRankers())
    with pytest.raises(InvalidArgumentError) as info:
        await core.rank("1", "", ["A", "NOPE"], 0, "", 0, [], 1.0)
    assert info.value.violations[0].field == "product_ids[1]"
    with pytest.raises(InvalidArgumentError, match="variant"):
        await core.rank("1", "", ["A"], 0, "bogus", 0, [], 1.0)
    with pytest.raises(InvalidArgumentError, match="diversity"):
        await core.rank("1", "", ["A"], 0, "", 1.5, [], 1.0)


async def test_fresh_purchase_changes_the_ranking_without_retraining():
    core = _core(fakes.FakeRankers())
    before = await core.rank("3", "", fakes.PRODUCTS, 0, "fused", 0, [], 1.0)
    after = await core.rank(
        "3", "", fakes.PRODUCTS, 0, "fused", 0, [d.UserEvent("F", d.EventKind.PURCHASE, 1e9, 1)], 1.0
    )
    rank_of = lambda r: [i.product_id for i in r.items].index("F")
    assert rank_of(after) < rank_of(before)


def test_mmr_zero_weight_is_relevance_order_and_weight_spreads_near_duplicates():
    rel = np.array([1.0, 0.99, 0.5])
    vecs = np.array([[1, 0], [1, 0], [0, 1]], dtype=np.float32)
    assert mmr_order(rel, vecs, 0.0, 3).tolist() == [0, 1, 2]
    assert mmr_order(rel, vecs, 0.7, 2).tolist() == [0, 2]


async def test_responses_name_the_bundle_the_versions_came_from():
    core = RankingCore(
        fakes.store(),
        fakes.TITLES,
        fakes.FUSION,
        fakes.FakeRankers().infer,
        fakes.encode,
        _versions,
        bundle_id="b0002-20261201T120000Z",
    )
    ranked = await core.rank("1", "", fakes.PRODUCTS, 3, "fused", 0.0, [], 1.0)
    assert {(v.name, v.version) for v in ranked.versions} == {
        (GNN_RANKER, "1"),
        (TRANSFORMER_RANKER, "1"),
        ("bundle", "b0002-20261201T120000Z"),
    }


async def test_explore_setting_of_a_variant_lifts_never_bought_products_by_a_fixed_term():
    core = _core(fakes.FakeRankers())
    base = await core.rank("1", "", fakes.PRODUCTS, 0, "fused", 0.0, [], 1.0)
    lean = await core.rank("1", "", fakes.PRODUCTS, 0, "fused+explore=0.5", 0.0, [], 1.0)
    bought = set(fakes.store().user_context("1").items.tolist())
    fused = {i.product_id: i.score for i in base.items}
    for item in lean.items:
        new = fakes.store().item_index.get_loc(item.product_id) not in bought
        bonus = 0.5 * fakes.FUSION.explore_span if new else 0.0
        assert item.model_scores["discovery"] == pytest.approx(bonus)
        assert item.score == pytest.approx(fused[item.product_id] + bonus)
    first_new = lambda r: next(
        i for i, x in enumerate(r.items) if fakes.store().item_index.get_loc(x.product_id) not in bought
    )
    assert first_new(lean) <= first_new(base)
    assert "discovery" not in base.items[0].model_scores  # the trained balance carries no extra term


@pytest.mark.parametrize(
    "variant", ["fused+explore=1.5", "fused+explore=-0.1", "fused+explore=nan", "fused+explore=", "bogus+explore=0.2"]
)
async def test_bad_explore_settings_are_invalid_variants(variant):
    with pytest.raises(InvalidArgumentError, match="variant"):
        await _core(fakes.FakeRankers()).rank("1", "", ["A"], 0, variant, 0, [], 1.0)


async def test_products_newer_than_the_bundle_are_ranked_from_their_catalogue_titles():
    """A product the catalogue has but the bundle does not: scored from its title embedding (new_cand_emb), its
    title graded against the query; ids neither knows are still refused by name."""

    async def new_titles(ids):
        return {p: "NEW " + fakes.TITLES[0] for p in ids if p == "NEW-1"}

    core = RankingCore(
        fakes.store(),
        fakes.TITLES,
        fakes.FUSION,
        fakes.FakeRankers().infer,
        fakes.encode,
        _versions,
        new_titles=new_titles,
    )
    word = fakes.TITLES[0].split()[-1]
    ranked = await core.rank("1", word, [fakes.PRODUCTS[1], "NEW-1"], 0, "fused", 0.0, [], 1.0)
    new = next(i for i in ranked.items if i.product_id == "NEW-1")
    assert new.title == "NEW " + fakes.TITLES[0]
    assert new.model_scores[RELEVANCE] > 0
    with pytest.raises(InvalidArgumentError) as info:
        await core.rank("1", "", [fakes.PRODUCTS[1], "GONE"], 0, "fused", 0.0, [], 1.0)
    assert [v.field for v in info.value.violations] == ["product_ids[1]"]


async def test_a_shelf_variant_ranks_with_the_shelfs_own_fusion_weights():
    """ "fused+shelf=DISCOVER" (what the gateway asks on that shelf): the shelf's weights, same normalisation; a shelf
    without its own weights ranks as the mixed list; an unknown shelf is an invalid variant."""
    from dataclasses import replace

    shelf_weights = {GNN_RANKER: 1.0, TRANSFORMER_RANKER: 0.0}
    fusion = replace(fakes.FUSION, shelves={"DISCOVER": shelf_weights})
    core = RankingCore(fakes.store(), fakes.TITLES, fusion, fakes.FakeRankers().infer, fakes.encode, _versions)
    mixed = await core.rank("1", "", fakes.PRODUCTS, 0, "fused", 0.0, [], 1.0)
    shelf = await core.rank("1", "", fakes.PRODUCTS, 0, "fused+shelf=DISCOVER", 0.0, [], 1.0)
    other = await core.rank("1", "", fakes.PRODUCTS, 0, "fused+shelf=BUY_AGAIN", 0.0, [], 1.0)
    assert [(i.product_id, i.score) for i in other.items] == [(i.product_id, i.score) for i in mixed.items]
    gnn_only = fakes.FUSION.with_weights(shelf_weights)
    for item in shelf.items:
        expected = gnn_only.term(GNN_RANKER, np.array([item.model_scores[GNN_RANKER]]))[0]
        assert item.score == pytest.approx(expected)
    assert [i.score for i in shelf.items] == sorted((i.score for i in shelf.items), reverse=True)
    with pytest.raises(InvalidArgumentError, match="shelf"):
        await core.rank("1", "", ["A"], 0, "fused+shelf=NOPE", 0, [], 1.0)
