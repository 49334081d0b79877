"""Typo tolerance through the real gateway: a misspelt query is searched as corrected (retrieval's title vocabulary,
tantivy + usearch, the real rankers and explanations over loopback gRPC), the response and the explanations say so,
and a new product's title words join the vocabulary as the catalogue delivers it."""

from __future__ import annotations

import random
import string
import time
import uuid
from collections.abc import Iterator

import grpc
import pytest
from google.type import money_pb2
from shop.catalog.v1 import catalog_service_pb2 as pb
from shop.catalog.v1 import catalog_service_pb2_grpc as pb_grpc
from shop.common.v1 import common_pb2 as cpb
from shop.gateway.v1 import gateway_service_pb2 as gpb

from libs.relevance import analyse
from libs.stack import Stack

FRESHNESS_S = 2.0


@pytest.fixture
def catalog(stack: Stack) -> Iterator[pb_grpc.CatalogServiceStub]:
    with grpc.insecure_channel(stack.addresses["gateway"]) as channel:
        yield pb_grpc.CatalogServiceStub(channel)


def _search(gateway, query: str, explain: bool = False) -> gpb.SearchResponse:
    return gateway.Search(gpb.SearchRequest(query=query, page_size=10, explain=explain), timeout=10)


def _with_word(page: gpb.SearchResponse, word: str) -> int:
    return sum(word.upper() in r.product.title.upper() for r in page.results)


@pytest.mark.parametrize(("typo", "word"), [("chrismas", "christmas"), ("lanter", "lantern")])
def test_a_typo_finds_what_the_correct_spelling_finds_and_says_so(gateway, typo, word):
    page, correct = _search(gateway, typo, explain=True), _search(gateway, word)
    assert page.corrected_query == word and correct.corrected_query == ""
    assert _with_word(correct, word) == 10 and _with_word(page, word) == 10
    assert [r.product.product_id for r in page.results] == [r.product.product_id for r in correct.results]
    assert not [x for x in page.degradations if x.stage in (cpb.STAGE_RANKING, cpb.STAGE_EXPLANATION)]
    for r in page.results:
        assert r.explanation.sentence.startswith(f'Showing results for "{word}". ')
        # The query evidence names the corrected word the title holds, never the typo.
        assert all(typo not in e.text.split() for e in r.explanation.evidence)


def test_explain_result_of_a_corrected_search_explains_the_score_served(gateway):
    page = _search(gateway, "chrismas")
    first = page.results[0]
    asked = gpb.ExplainResultRequest(attribution_token=page.attribution_token, product_ids=[first.product.product_id])
    explained = gateway.ExplainResult(asked, timeout=10).results[0]
    assert explained.explanation.score == pytest.approx(first.score, abs=1e-4)
    assert any("christmas" in e.text.split() for e in explained.explanation.evidence)


def test_a_typo_in_one_word_keeps_the_others_as_typed(gateway):
    page = _search(gateway, "chrismas tree")
    assert page.corrected_query == "christmas tree"
    wanted = set(analyse("christmas tree"))
    assert all(wanted <= set(analyse(r.product.title)) for r in page.results[:3])


def test_new_title_words_join_the_vocabulary_without_a_rebuild(gateway, catalog):
    rng = random.Random(uuid.uuid4().int)
    word = "zq" + "".join(rng.choices(string.ascii_lowercase, k=8))  # 10 letters no title has
    typo = word[:5] + word[6:]  # one letter dropped: one edit
    assert _search(gateway, typo).corrected_query == ""  # nothing near it yet
    pid = f"N-{uuid.uuid4().hex[:8]}"
    catalog.UpsertProducts(
        pb.UpsertProductsRequest(
            products=[
                pb.Product(
                    product_id=pid,
                    title=f"{word.upper()} GLASS LANTERN",
                    price=money_pb2.Money(currency_code="GBP", units=2),
                    availability=cpb.AVAILABILITY_IN_STOCK,
                )
            ]
        ),
        timeout=10,
    )
    start = time.monotonic()
    while (page := _search(gateway, typo)).corrected_query != word:
        assert time.monotonic() - start < FRESHNESS_S, "the new word did not join the vocabulary in time"
        time.sleep(0.05)
    assert page.results[0].product.product_id == pid
