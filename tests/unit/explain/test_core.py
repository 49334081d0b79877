import numpy as np
import pytest

from libs import domain as d
from libs.explain import page, wording
from libs.errors import InvalidArgumentError, UnavailableError
from libs.rankers.gnn_ranker import NAME as GNN_RANKER
from libs.rankers.transformer_ranker import NAME as TRANSFORMER_RANKER
from libs.explain.core import ExplanationCore
from tests.unit import fakes


def _core(rankers: fakes.FakeRankers) -> ExplanationCore:
    return ExplanationCore(fakes.store(), fakes.TITLES, fakes.FUSION, rankers.infer, fakes.encode)


async def test_one_batched_call_per_ranker_with_every_masked_scenario():
    rankers = fakes.FakeRankers()
    out = await _core(rankers).explain("1", "", ["A", "B"], "fused", [], 1.0)
    assert rankers.calls == {GNN_RANKER: 1, TRANSFORMER_RANKER: 1}
    # full + 2 history items (A, C) + repeat + popularity + similar customers + none of them (without / with the query)
    assert rankers.batch_sizes == [8, 8]
    assert len(out.explanations) == 2 and out.degradations == []


async def test_query_term_scenarios_go_only_to_the_rankers_that_read_the_query():
    """Search: the term variants are encoded while both rankers score the other scenarios; then one more call,
    to the query-reading ranker only, scores the term scenarios (for the others those rows equal the full row)."""
    rankers = fakes.FakeRankers()
    out = await _core(rankers).explain("1", "lantern", ["A", "B"], "fused", [], 1.0)
    assert rankers.calls == {GNN_RANKER: 1, TRANSFORMER_RANKER: 2}
    assert sorted(rankers.batch_sizes) == [1, 8, 8]  # 1 query term
    assert len(out.explanations) == 2 and out.degradations == []
    assert any(
        e.kind in (d.EvidenceKind.QUERY_TERM, d.EvidenceKind.QUERY_SIMILAR)
        for ex in out.explanations
        for e in ex.evidence
    )


async def test_term_variants_not_encoded_or_not_scored_leave_the_terms_out_and_the_sums_exact():
    """The encoder down for the variants (the query itself answered), or the query-reading ranker failing on the
    term call only: no term evidence, the baseline keeps the query, and score - baseline still adds up."""
    calls = []

    async def encode_query_only(texts, timeout):
        calls.append(list(texts))
        if len(calls) > 1:
            raise UnavailableError("text_encoder: UNAVAILABLE")
        return await fakes.encode(texts, timeout)

    class TermCallFails(fakes.FakeRankers):
        async def infer(self, model, inputs, outputs, timeout):
            if model == TRANSFORMER_RANKER and self.calls.get(model):  # its second call: the term scenarios
                raise UnavailableError("transformer_ranker: UNAVAILABLE")
            return await super().infer(model, inputs, outputs, timeout)

    encoder_down = ExplanationCore(
        fakes.store(), fakes.TITLES, fakes.FUSION, fakes.FakeRankers().infer, encode_query_only
    )
    ranker_down = _core(TermCallFails())
    for core, stage in ((encoder_down, d.Stage.TEXT_ENCODER), (ranker_down, d.Stage.RANKING)):
        out = await core.explain("1", "red lantern", ["A", "C"], "fused", [], 1.0)
        assert [x.stage for x in out.degradations] == [stage]
        for ex in out.explanations:
            assert not [e for e in ex.evidence if e.kind in (d.EvidenceKind.QUERY_TERM, d.EvidenceKind.QUERY_SIMILAR)]
            assert ex.score - ex.baseline == pytest.approx(
                sum(e.contribution for e in ex.evidence) + ex.interaction, abs=1e-6
            )


async def test_contributions_are_score_drops_and_the_sentence_uses_only_positive_evidence():
    rankers = fakes.FakeRankers()
    out = await _core(rankers).explain("1", "", ["A"], "fused", [], 1.0)
    ex = out.explanations[0]
    kinds = [e.kind for e in ex.evidence]
    assert d.EvidenceKind.REPEAT_PURCHASE in kinds
    assert ex.evidence == sorted(ex.evidence, key=lambda e: -e.contribution)
    top = ex.evidence[0]
    assert top.contribution > 0
    found = wording.reasons(ex.evidence)
    assert ex.sentence.startswith("Because ") and wording.phrase(found[0]) in ex.sentence
    assert all(r.strength > 0 for r in found)
    assert 0.0 < ex.confidence < 1.0 and ex.method == "counterfactual-masking"


async def test_query_terms_are_measured_evidence():
    out = await _core(fakes.FakeRankers()).explain("", "red lantern", ["A", "C"], "fused", [], 1.0)
    lantern = out.explanations[0]
    terms = {e.text: e.contribution for e in lantern.evidence if e.kind is d.EvidenceKind.QUERY_TERM}
    assert set(terms) <= {"red", "lantern"} and terms


async def test_recorded_purchase_is_recent_event_evidence():
    out = await _core(fakes.FakeRankers()).explain(
        "3", "", ["F"], "fused", [d.UserEvent("F", d.EventKind.PURCHASE, 1e9, 1)], 1.0
    )
    ev = [e for e in out.explanations[0].evidence if e.product_id == "F"]
    assert ev and ev[0].kind is d.EvidenceKind.RECENT_EVENT


def test_sentence_without_positive_evidence_claims_nothing():
    text = wording.sentence([d.Evidence(d.EvidenceKind.POPULARITY, -0.2, count=40, window_days=28)])
    assert "ordered" not in text and "40" not in text


async def test_down_and_bad_inputs():
    with pytest.raises(UnavailableError):
        await _core(fakes.FakeRankers(down=(GNN_RANKER, TRANSFORMER_RANKER))).explain("1", "", ["A"], "", [], 1.0)
    with pytest.raises(InvalidArgumentError, match="product_ids"):
        await _core(fakes.FakeRankers()).explain("1", "", [], "", [], 1.0)
    part = await _core(fakes.FakeRankers(down=(GNN_RANKER,))).explain("1", "", ["A"], "", [], 1.0)
    assert [(x.stage, x.model) for x in part.degradations] == [(d.Stage.RANKING, GNN_RANKER)]
    assert np.isfinite(part.explanations[0].confidence)


def test_sentence_keeps_a_helpful_recent_purchase():
    pieces = [
        d.Evidence(d.EvidenceKind.REPEAT_PURCHASE, 0.9, count=3, last_time=1.32e9),
        d.Evidence(d.EvidenceKind.POPULARITY, 0.5, count=40, window_days=28),
        d.Evidence(d.EvidenceKind.RECENT_EVENT, 0.1, "F", "DOOR MAT"),
    ]
    assert (
        wording.sentence(pieces) == "Because you ordered it 3 times, last on 30 Oct 2011, and you just bought DOOR MAT."
    )
    many = [d.Evidence(d.EvidenceKind.PAST_PURCHASE, 1.0 - i / 100, str(i), f"T{i}") for i in range(12)]
    shown = page._shown(many + [d.Evidence(d.EvidenceKind.RECENT_EVENT, 0.01, "F", "DOOR MAT")])
    assert len(shown) == page.MAX_EVIDENCE_SHOWN and shown[-1].kind is d.EvidenceKind.RECENT_EVENT


async def test_explained_score_is_the_served_score_and_contributions_are_exact_drops():
    """The score an explanation explains is the fused score ranking served (ranking saw all six candidates, the
    explanation only the page); each contribution is the fused drop when that one piece is masked."""
    from libs.ranking import RankingCore

    rankers = fakes.FakeRankers()
    ranking = RankingCore(fakes.store(), fakes.TITLES, fakes.FUSION, rankers.infer, fakes.encode, _version)
    served = await ranking.rank("1", "tea lantern", fakes.PRODUCTS, 3, "fused", 0.0, [], 1.0)
    page_ids = [i.product_id for i in served.items]
    out = await _core(rankers).explain("1", "tea lantern", page_ids, "fused", [], 1.0)
    for item, ex in zip(served.items, out.explanations):
        assert ex.score == pytest.approx(item.score, abs=1e-9)
    # Re-derive one contribution by hand: mask the repeat signal alone and re-fuse.
    from libs.explain import Mask, masked_scenarios
    from libs.history import user_context
    from libs.rankers import get as ranker

    store = fakes.store()
    ctx = user_context(store, "1", [])
    cand = np.array([store.item_index.get_loc(p) for p in page_ids])
    q = (await fakes.encode(["tea lantern"], 1.0))[0]
    scores = {}
    for m in (GNN_RANKER, TRANSFORMER_RANKER):
        x = ranker(m).inputs(store, ctx, cand, q if ranker(m).reads_query else None)
        x = masked_scenarios(x, [Mask("repeat")], ranker(m).history_slots)
        scores[m] = (await rankers.infer(m, ranker(m).to_wire(x), ["score"], 1.0))["score"]
    drop = fakes.FUSION.combine(scores)
    for c, ex in enumerate(out.explanations):
        repeat = [e.contribution for e in ex.evidence if e.kind is d.EvidenceKind.REPEAT_PURCHASE]
        want = drop[0, c] - drop[1, c]
        assert (repeat or [0.0])[0] == pytest.approx(want, abs=1e-6) or abs(want) <= wording.MIN_CONTRIBUTION


async def test_score_minus_baseline_is_the_sum_of_contributions_plus_interaction():
    for additive in (True, False):
        core = _core(fakes.FakeRankers(additive=additive))
        out = await core.explain("1", "", ["A", "B", "C"], "fused", [], 1.0)
        for ex in out.explanations:
            measured = sum(e.contribution for e in ex.evidence)  # every piece is shown here (few of them)
            assert ex.score - ex.baseline == pytest.approx(measured + ex.interaction, abs=1e-6)
            if additive:  # pieces that do not interact add up exactly, up to the float32 scores' rounding
                assert ex.interaction == pytest.approx(0.0, abs=1e-6 * max(1.0, abs(ex.score)))


async def _version(model: str) -> str:
    return "1"


async def test_query_evidence_says_matches_only_for_words_the_title_contains():
    out = await _core(fakes.FakeRankers()).explain("1", "red lantern pot", ["A", "C", "D"], "fused", [], 1.0)
    for pid, ex in zip(["A", "C", "D"], out.explanations):
        title = fakes.TITLES[fakes.PRODUCTS.index(pid)]
        for e in ex.evidence:
            if e.kind in (d.EvidenceKind.QUERY_TERM, d.EvidenceKind.QUERY_MATCH):
                assert all(w.upper() in title.split() for w in e.text.split()), (title, e)
            if e.kind is d.EvidenceKind.QUERY_SIMILAR:
                assert e.text.upper() not in title.split()
        match = [e for e in ex.evidence if e.kind is d.EvidenceKind.QUERY_MATCH]
        if pid == "C":  # TEA CUP has none of the words: relevance 0, no match claimed
            assert not match and "matches" not in ex.sentence and "title has" not in ex.sentence
        else:
            assert match and match[0].contribution > 0


async def test_search_orders_by_relevance_then_personal_score_and_explains_it():
    from libs.ranking import RankingCore

    rankers = fakes.FakeRankers()
    ranking = RankingCore(fakes.store(), fakes.TITLES, fakes.FUSION, rankers.infer, fakes.encode, _version)
    served = await ranking.rank("2", "tea pot", fakes.PRODUCTS, 6, "fused", 0.0, [], 1.0)
    ids = [i.product_id for i in served.items]
    assert ids[0] == "D"  # TEA POT: every word, as a phrase
    assert set(ids[1:2]) == {"C"}  # TEA CUP: one word, above the titles with none
    relevance = [i.model_scores["relevance"] for i in served.items]
    assert relevance == sorted(relevance, reverse=True)
    out = await _core(rankers).explain("2", "tea pot", ids, "fused", [], 1.0)
    for item, ex in zip(served.items, out.explanations):
        assert ex.score == pytest.approx(item.score, abs=1e-6)
    assert out.explanations[0].sentence.startswith('Because its title has "tea" and "pot" from your search')


@pytest.mark.parametrize("query", ["", "tea lantern"])
async def test_discovery_term_is_explained_as_it_is_and_the_score_stays_the_served_one(query):
    from libs.ranking import RankingCore

    rankers = fakes.FakeRankers()
    variant = "fused+explore=0.3"
    ranking = RankingCore(fakes.store(), fakes.TITLES, fakes.FUSION, rankers.infer, fakes.encode, _version)
    served = await ranking.rank("1", query, fakes.PRODUCTS, 6, variant, 0.0, [], 1.0)
    out = await _core(rankers).explain("1", query, [i.product_id for i in served.items], variant, [], 1.0)
    bought = set(fakes.store().user_context("1").items.tolist())
    for item, ex in zip(served.items, out.explanations):
        assert ex.score == pytest.approx(item.score, abs=1e-6)
        found = [e.contribution for e in ex.evidence if e.kind is d.EvidenceKind.DISCOVERY]
        if fakes.store().item_index.get_loc(item.product_id) in bought:
            assert not found
        else:
            assert found == [pytest.approx(0.3 * fakes.FUSION.explore_span)]
        measured = sum(e.contribution for e in ex.evidence)
        if len(ex.evidence) < page.MAX_EVIDENCE_SHOWN:
            assert ex.score - ex.baseline == pytest.approx(measured + ex.interaction, abs=1e-6)


@pytest.mark.parametrize("query", ["", "tea lantern"])
async def test_purchase_frequency_prior_is_served_and_explained_as_it_is(query):
    from libs.features.frequency import frequency_prior, frequency_text
    from libs.fusion import PRIOR, Fusion
    from libs.ranking import RankingCore

    base = fakes.FUSION
    fusion = Fusion(
        dict(base.weights) | {PRIOR: 0.2},
        dict(base.centre) | {PRIOR: -2.0},
        dict(base.scale) | {PRIOR: 1.5},
        base.explore_span,
    )
    rankers = fakes.FakeRankers()
    store = fakes.store()
    ranking = RankingCore(store, fakes.TITLES, fusion, rankers.infer, fakes.encode, _version)
    served = await ranking.rank("1", query, fakes.PRODUCTS, 6, "fused", 0.0, [], 1.0)
    without = await RankingCore(store, fakes.TITLES, base, rankers.infer, fakes.encode, _version).rank(
        "1", query, fakes.PRODUCTS, len(fakes.PRODUCTS), "fused", 0.0, [], 1.0
    )
    core = ExplanationCore(store, fakes.TITLES, fusion, rankers.infer, fakes.encode)
    out = await core.explain("1", query, [i.product_id for i in served.items], "fused", [], 1.0)
    ctx = store.user_context("1")
    before = {i.product_id: i.score for i in without.items}
    for item, ex in zip(served.items, out.explanations):
        idx = np.array([store.item_index.get_loc(item.product_id)])
        term = 0.2 * (frequency_prior(store, ctx, idx)[0] + 2.0) / 1.5
        assert item.model_scores[PRIOR] == pytest.approx(frequency_prior(store, ctx, idx)[0])
        assert item.score == pytest.approx(before[item.product_id] + term, abs=1e-6)  # the fused score's new term
        assert ex.score == pytest.approx(item.score, abs=1e-6)
        found = [e for e in ex.evidence if e.kind is d.EvidenceKind.PURCHASE_FREQUENCY]
        if abs(term) > wording.MIN_CONTRIBUTION and len(ex.evidence) < page.MAX_EVIDENCE_SHOWN:
            assert [e.contribution for e in found] == [pytest.approx(term, abs=1e-6)]
            assert found[0].text == frequency_text(store, ctx, idx)[0]
        if len(ex.evidence) < page.MAX_EVIDENCE_SHOWN:
            measured = sum(e.contribution for e in ex.evidence)
            assert ex.score - ex.baseline == pytest.approx(measured + ex.interaction, abs=1e-6)


async def test_products_newer_than_the_bundle_are_explained_with_the_score_ranking_served():
    """A product the catalogue has but the bundle does not: explained from its title (embedding and query match),
    with the same score ranking served it; the query match names only words its title holds."""
    from libs.ranking import RankingCore

    async def new_titles(ids):
        return {p: "PAPER LANTERN" for p in ids if p == "NEW-1"}

    rankers = fakes.FakeRankers()
    ids = ["NEW-1", fakes.PRODUCTS[2]]
    ranking = RankingCore(
        fakes.store(), fakes.TITLES, fakes.FUSION, rankers.infer, fakes.encode, _version, new_titles=new_titles
    )
    served = await ranking.rank("1", "tea lantern", ids, 0, "fused", 0.0, [], 1.0)
    core = ExplanationCore(
        fakes.store(), fakes.TITLES, fakes.FUSION, rankers.infer, fakes.encode, new_titles=new_titles
    )
    out = await core.explain("1", "tea lantern", ids, "fused", [], 1.0)
    scores = {i.product_id: i.score for i in served.items}
    for pid, ex in zip(ids, out.explanations):
        assert ex.score == pytest.approx(scores[pid], abs=1e-9)
    matched = [e.text for e in out.explanations[0].evidence if e.kind is d.EvidenceKind.QUERY_MATCH]
    assert matched == ["lantern"]


async def test_another_bundle_is_a_failed_precondition_and_the_held_one_is_named():
    from libs.errors import FailedPreconditionError

    async def version(model):
        return "7"

    core = ExplanationCore(
        fakes.store(), fakes.TITLES, fakes.FUSION, fakes.FakeRankers().infer, fakes.encode, version, "b0007"
    )
    with pytest.raises(FailedPreconditionError) as info:
        await core.explain("1", "", ["A"], "fused", [], 1.0, bundle_id="b0006")
    assert info.value.reason == "BUNDLE_NOT_LOADED" and info.value.extra == {"bundle_id": "b0006", "loaded": "b0007"}
    out = await core.explain("1", "", ["A"], "fused", [], 1.0, bundle_id="b0007", all_evidence=True)
    assert set(out.versions) == {
        d.ModelVersion(GNN_RANKER, "7"),
        d.ModelVersion(TRANSFORMER_RANKER, "7"),
        d.ModelVersion("bundle", "b0007"),
    }
    ex = out.explanations[0]
    assert ex.score - ex.baseline == pytest.approx(sum(e.contribution for e in ex.evidence) + ex.interaction, abs=1e-9)
    shown = (await core.explain("1", "", ["A"], "fused", [], 1.0)).explanations[0]
    assert shown.sentence == ex.sentence and len(ex.evidence) >= len(shown.evidence)


async def test_on_a_shelf_the_explained_score_is_the_one_ranking_served_with_the_shelfs_weights():
    """ "fused+shelf=BUY_AGAIN": explanation fuses with the shelf's weights as ranking did (same score), which differ
    from the mixed list's."""
    from dataclasses import replace

    from libs.ranking import RankingCore

    fusion = replace(fakes.FUSION, shelves={"BUY_AGAIN": {GNN_RANKER: 0.9, TRANSFORMER_RANKER: 0.1}})
    rankers = fakes.FakeRankers()
    ranking = RankingCore(fakes.store(), fakes.TITLES, fusion, rankers.infer, fakes.encode, _version)
    explainer = ExplanationCore(fakes.store(), fakes.TITLES, fusion, rankers.infer, fakes.encode, _version)
    variant = "fused+shelf=BUY_AGAIN"
    served = await ranking.rank("1", "", fakes.PRODUCTS, 3, variant, 0.0, [], 1.0)
    mixed = await ranking.rank("1", "", fakes.PRODUCTS, 3, "fused", 0.0, [], 1.0)
    assert [i.score for i in served.items] != [i.score for i in mixed.items]
    out = await explainer.explain("1", "", [i.product_id for i in served.items], variant, [], 1.0)
    for item, ex in zip(served.items, out.explanations):
        assert ex.score == pytest.approx(item.score, abs=1e-9)
