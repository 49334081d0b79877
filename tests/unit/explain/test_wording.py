from dataclasses import replace

import numpy as np
import pytest

from libs import domain as d
from libs.explain import evidence as ev
from libs.explain import wording
from libs.explain.core import ExplanationCore
from libs.features import DAY
from libs.features.frequency import order_counts
from tests.unit import fakes
from tests.unit.explain.sentence_facts import repeated_claims, unsupported

K = d.EvidenceKind
NOV_2 = 1320192000.0  # 2 Nov 2011 00:00 UTC


def test_pieces_of_one_claim_are_named_once_with_their_facts():
    own = [
        d.Evidence(K.REPEAT_PURCHASE, 0.4, count=5, last_time=NOV_2),
        d.Evidence(K.PURCHASE_FREQUENCY, 0.3, text="you ordered it 5 times before", count=5, last_time=NOV_2),
        d.Evidence(K.POPULARITY, 0.2, count=57, window_days=28),
    ]
    assert (
        wording.sentence(own)
        == "Because you ordered it 5 times, last on 2 Nov 2011, and it was ordered 57 times in the last 28 days."
    )
    query = [
        d.Evidence(K.QUERY_MATCH, 20.0, text="tea set"),
        d.Evidence(K.QUERY_TERM, 0.3, text="tea"),
        d.Evidence(K.QUERY_TERM, 0.1, text="set"),
        d.Evidence(K.QUERY_SIMILAR, 0.05, text="ceramic"),
    ]
    assert wording.sentence(query) == (
        'Because its title has "tea" and "set" from your search and is close in meaning to "ceramic".'
    )
    assert wording.sentence(query[:3]) == 'Because its title has "tea" and "set" from your search.'
    close = [
        d.Evidence(K.QUERY_SIMILAR, 0.3, text="dresser"),
        d.Evidence(K.QUERY_SIMILAR, 0.2, text="gray"),
        d.Evidence(K.QUERY_SIMILAR, 0.1, text="dark"),
        d.Evidence(K.QUERY_SIMILAR, -0.05, text="with"),
    ]
    assert wording.sentence(close) == 'Because it is close in meaning to "dresser" and "gray" from your search.'


def test_at_most_two_reasons_the_strongest_claims_first():
    pieces = [
        d.Evidence(K.PAST_PURCHASE, 0.1, "A", "RED LANTERN", count=1, last_time=NOV_2),
        d.Evidence(K.SIMILAR_CUSTOMERS, 0.3, count=12, window_days=28),
        d.Evidence(K.CO_PURCHASE_NEIGHBOUR, 0.25, "C", "TEA CUP", count=3, last_time=NOV_2),
        d.Evidence(K.POPULARITY, 0.2, count=400),
    ]
    assert wording.sentence(pieces) == (
        "Because 12 customers who buy what you buy ordered it in the last 28 days, "
        "and shoppers often buy it with TEA CUP, which you ordered 3 times, last on "
        "2 Nov 2011."
    )
    assert [r.claim for r in wording.reasons(pieces)] == ["SIMILAR_CUSTOMERS", "product:C", "shop", "product:A"]


def test_the_second_reason_is_about_the_product_when_one_comparable_helped():
    """A past purchase read for every candidate lifts the page alike; the product's own facts tell it apart."""
    chair = [
        d.Evidence(K.QUERY_MATCH, 5.0, text="chair"),
        d.Evidence(K.PAST_PURCHASE, 0.08, "H", "HAND WARMER BABUSHKA DESIGN", count=2, last_time=NOV_2),
        d.Evidence(K.SIMILAR_CUSTOMERS, 0.03, count=7, window_days=28),
    ]
    assert wording.sentence(chair) == (
        'Because its title has "chair" from your search, and 7 customers who buy what you buy ordered it in the last '
        "28 days."
    )
    other = [chair[0], chair[1], d.Evidence(K.SIMILAR_CUSTOMERS, 0.03, count=3, window_days=28)]
    assert wording.sentence(other) != wording.sentence(chair)
    # ... but not one too weak to be the reason: then the past purchase is named
    weak = [chair[0], chair[1], d.Evidence(K.SIMILAR_CUSTOMERS, 0.01, count=7, window_days=28)]
    assert "HAND WARMER BABUSHKA DESIGN twice" in wording.sentence(weak)
    # a past purchase the product is bought with is about the product
    linked = [chair[0], replace(chair[1], kind=K.CO_PURCHASE_NEIGHBOUR), chair[2]]
    assert "shoppers often buy it with HAND WARMER BABUSHKA DESIGN" in wording.sentence(linked)


def test_stop_words_are_not_named_as_close_in_meaning():
    close = [d.Evidence(K.QUERY_SIMILAR, 0.3, text="and"), d.Evidence(K.QUERY_SIMILAR, 0.2, text="recliner")]
    assert wording.sentence(close) == 'Because it is close in meaning to "recliner" from your search.'
    assert wording.sentence(close[:1]) == "Because it is close in meaning to your search."


def test_a_claim_whose_pieces_cancel_out_is_not_named():
    """Shop-wide popularity helped, but the frequency prior (the same claim: how well it sells) hurt more."""
    pieces = [
        d.Evidence(K.POPULARITY, 0.2, count=9, window_days=28),
        d.Evidence(
            K.PURCHASE_FREQUENCY, -0.5, text="it is number 900 in orders over the last 28 days", count=9, window_days=28
        ),
        d.Evidence(K.DISCOVERY, 0.1),
    ]
    assert wording.sentence(pieces) == "Because it is new to you, which this list favours."


def test_the_products_own_past_orders_in_the_history_are_the_repeat_claim():
    pieces = [
        d.Evidence(K.PAST_PURCHASE, 0.3, "A", "RED LANTERN", count=2, last_time=NOV_2),
        d.Evidence(K.REPEAT_PURCHASE, 0.2, count=2, last_time=NOV_2),
        d.Evidence(K.POPULARITY, 0.1, count=9, window_days=28),
    ]
    assert (
        wording.sentence(pieces, "A")
        == "Because you ordered it twice, last on 2 Nov 2011, and it was ordered 9 times in the last 28 days."
    )


def test_a_count_claim_without_its_count_is_not_made():
    """An unsold product's popularity features are not all 0 (its smoothed repeat rate): nothing to name."""
    pieces = [d.Evidence(K.POPULARITY, 0.3), d.Evidence(K.SIMILAR_CUSTOMERS, 0.2), d.Evidence(K.DISCOVERY, 0.1)]
    assert wording.sentence(pieces) == "Because it is new to you, which this list favours."


def test_items_whose_evidence_differs_get_different_sentences():
    a = [d.Evidence(K.POPULARITY, 0.2, count=57, window_days=28)]
    b = [d.Evidence(K.POPULARITY, 0.2, count=31, window_days=28)]
    c = [d.Evidence(K.POPULARITY, 0.2, count=31)]
    assert len({wording.sentence(x) for x in (a, b, c)}) == 3
    assert wording.sentence(c) == "Because it has been ordered 31 times in all."


def test_no_hedge_lists_alternatives():
    pieces = [d.Evidence(K.POPULARITY, 0.2, count=2, window_days=28), d.Evidence(K.SIMILAR_CUSTOMERS, 0.1, count=1)]
    text = wording.sentence(pieces)
    assert text == "Because it was ordered twice in the last 28 days, and 1 customer who buys what you buy ordered it."
    assert " or " not in text and "(" not in text


def test_the_fact_reader_catches_facts_the_evidence_lacks():
    evidence = [
        d.Evidence(K.PAST_PURCHASE, 0.2, "A", "RED LANTERN", count=3, last_time=NOV_2),
        d.Evidence(K.QUERY_MATCH, 1.0, text="lantern"),
    ]
    ok = 'Because its title has "lantern" from your search, and you ordered RED LANTERN 3 times, last on 2 Nov 2011.'
    assert unsupported(ok, evidence) == [] and repeated_claims(ok, evidence) == []
    assert unsupported(ok.replace("3 times", "4 times"), evidence) == ["4"]
    assert unsupported(ok.replace("2 Nov", "3 Nov"), evidence) == ["3 Nov 2011"]
    assert unsupported(ok.replace("RED LANTERN", "BLUE LANTERN"), evidence) == ["BLUE LANTERN"]
    assert unsupported(ok.replace('"lantern"', '"lamp"'), evidence) == ["lamp"]
    twice = 'Because its title has "lantern" from your search, and it matches "lantern".'
    assert repeated_claims(twice, evidence) == ['"lantern"']


def test_facts_are_read_from_the_data_the_models_read():
    store = fakes.store()
    ctx = store.user_context("1")
    own = ev.own_orders(ctx)
    items, counts = order_counts(ctx)
    assert {i: f.count for i, f in own.items()} == dict(zip(items.tolist(), counts.tolist()))
    assert own[0].count == 2 and own[0].last_time == ctx.ts[ctx.items == 0].max()
    shop = ev.shop_orders(store, np.arange(store.n_items))
    # fakes.store: every purchase is 10 to 20 days before the store's now
    assert [f.count for f in shop] == [2, 0, 2, 1, 1, 0] and {f.window_days for f in shop if f.count} == {28}
    buyers = ev.similar_buyers(store, ctx, np.arange(store.n_items))
    rows = store.neighbours.nearest(ctx.items, ctx.ts, ctx.now, "1")
    for item, fact in enumerate(buyers):
        who = [store.neighbours.user_ids[r] for r in rows]
        lately = sum(
            bool(np.any((store.users[u].items == item) & (store.users[u].ts >= store.now - 28 * DAY))) for u in who
        )
        assert fact.count == lately


@pytest.mark.parametrize("query", ["", "tea lantern"])
async def test_every_fact_of_an_explained_page_is_read_from_its_evidence(query):
    core = ExplanationCore(fakes.store(), fakes.TITLES, fakes.FUSION, fakes.FakeRankers().infer, fakes.encode)
    for user in ("1", "2", "3"):
        out = await core.explain(user, query, fakes.PRODUCTS, "fused+explore=0.2", [], 1.0)
        for ex in out.explanations:
            assert unsupported(ex.sentence, ex.evidence) == [], ex.sentence
            assert repeated_claims(ex.sentence, ex.evidence) == [], ex.sentence


def test_a_measurable_repurchase_interval_is_named_with_the_orders():
    own = [d.Evidence(K.REPEAT_PURCHASE, 0.4, count=4, last_time=NOV_2, interval_days=20)]
    text = wording.sentence(own)
    assert text == "Because you ordered it 4 times, about every 3 weeks, last on 2 Nov 2011."
    assert unsupported(text, own) == [] and unsupported(text.replace("3 weeks", "5 weeks"), own) == ["5"]
    assert "about every 9 days" in wording.sentence([replace(own[0], interval_days=9)])
    assert "every" not in wording.sentence([replace(own[0], interval_days=0)])  # bought on one day only


def test_the_interval_is_the_one_the_repeat_features_read():
    from libs.features.user import cycle_features, own_cycle_days, repeat_features

    store = fakes.store()
    for user in ("1", "2", "3"):
        ctx = store.user_context(user)
        items = np.arange(store.n_items)
        days = own_cycle_days(ctx, items)
        feats = repeat_features(ctx, items)
        age = np.array(
            [(ctx.now - ctx.ts[ctx.items == i].max()) / DAY if (ctx.items == i).any() else np.inf for i in items]
        )
        want = cycle_features(age, days)
        np.testing.assert_allclose(feats[:, 9], want[0], rtol=1e-6)
        np.testing.assert_allclose(feats[:, 10], want[1], rtol=1e-6)
        for item, fact in ev.own_orders(ctx).items():
            assert fact.interval_days == (round(days[item]) if np.isfinite(days[item]) else 0)


async def test_context_shelves_name_what_placed_each_result_from_the_shelf_statistics():
    store = fakes.store()
    core = ExplanationCore(store, fakes.TITLES, fakes.FUSION, fakes.FakeRankers().infer, fakes.encode)
    plain = await core.explain("1", "", fakes.PRODUCTS[1:], "fused", [], 1.0, all_evidence=True)
    fbt = await core.explain(
        "1",
        "",
        fakes.PRODUCTS[1:],
        "fused",
        [],
        1.0,
        all_evidence=True,
        shelf=d.Shelf.FREQUENTLY_BOUGHT_TOGETHER,
        context=["A", "NOT-KNOWN"],
    )
    for product, before, ex in zip(fakes.PRODUCTS[1:], plain.explanations, fbt.explanations):
        item = fakes.PRODUCTS.index(product)
        shared = int(store.copurchase[0, item])  # invoices holding A and the product: what the shelf ranked by
        placed = [e for e in ex.evidence if e.kind is K.BOUGHT_TOGETHER]
        # the score, baseline and every measured contribution are unchanged: the piece moved nothing
        assert (ex.score, ex.baseline, ex.interaction) == (before.score, before.baseline, before.interaction)
        assert [e for e in ex.evidence if e.kind is not K.BOUGHT_TOGETHER] == before.evidence
        if shared:
            assert [(e.product_id, e.title, e.count, e.contribution) for e in placed] == [
                ("A", "RED LANTERN", shared, 0.0)
            ]
            assert ex.sentence.startswith(f"Because it was bought together with RED LANTERN in {shared} order")
        else:
            assert placed == [] and ex.sentence == before.sentence
        assert unsupported(ex.sentence, ex.evidence) == [] and repeated_claims(ex.sentence, ex.evidence) == []
    similar = await core.explain("", "", ["B", "C"], "fused", [], 1.0, shelf=d.Shelf.SIMILAR_ITEMS, context=["A"])
    blue, cup = similar.explanations
    assert blue.sentence.startswith('Because it shares "lantern" with RED LANTERN')  # BLUE LANTERN vs RED LANTERN
    assert cup.sentence.startswith("Because its title is close in meaning to RED LANTERN")
    assert all(unsupported(x.sentence, x.evidence) == [] for x in (blue, cup))
