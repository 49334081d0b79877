"""ExplainResult's logic over the real SQLite event store and fakes of the inner services (no processes): what a
response served is kept, read back for the same user, query, variant, bundle and events, and checked."""

import time

import pytest

from libs import domain as d
from libs.errors import FailedPreconditionError, InvalidArgumentError, UnavailableError
from libs.events import SqliteEventStore
from libs.gateway import Budget, GatewayCore
from libs.stages import StageResult
from libs.experiments import AttributionTokens, Variants
from libs.on_demand import RESPONSE_NOT_KEPT, RESULT_CHANGED
from tests.unit.libs.test_gateway import FakeCatalog, FakeRetrieval

BUNDLE = "b0001-20261206T000000Z"


class Ranking:
    async def rank(self, user_id, query, candidates, page_size, variant, recent, timeout):
        items = [d.ScoredItem(c.product_id, c.title, 10.0 - i / 7) for i, c in enumerate(candidates)]
        return StageResult(items, [], [d.ModelVersion("gnn_ranker", "1"), d.ModelVersion("bundle", BUNDLE)])


class Explainer:
    """Explains with the score ranking gave, and records what it was asked."""

    def __init__(self, drift: float = 0.0, degraded: bool = False) -> None:
        self.calls = []
        self.drift = drift
        self.degraded = degraded

    async def explain(
        self,
        user_id,
        query,
        product_ids,
        variant,
        recent,
        timeout,
        bundle_id="",
        all_evidence=False,
        shelf=None,
        context=(),
    ):
        self.calls.append(
            dict(
                user_id=user_id,
                query=query,
                product_ids=list(product_ids),
                variant=variant,
                recent=list(recent),
                bundle_id=bundle_id,
                all_evidence=all_evidence,
                shelf=shelf,
                context=list(context),
            )
        )
        scores = [10.0 - int(p[1:]) / 7 + self.drift for p in product_ids]
        down = [d.Degradation(d.Stage.RANKING, "gnn_ranker: UNAVAILABLE", "gnn_ranker")] if self.degraded else []
        return StageResult(
            [d.Explanation([], f"why {p}", 0.5, score=s) for p, s in zip(product_ids, scores)],
            down,
            [d.ModelVersion("gnn_ranker", "1"), d.ModelVersion("bundle", bundle_id)],
        )


@pytest.fixture
def store(tmp_path):
    s = SqliteEventStore(tmp_path / "events.sqlite3")
    yield s
    s.close()


def _core(store, explainer, ttl_s=3600.0, variants="fused+explore=0.2:1"):
    return GatewayCore(
        FakeRetrieval(),
        Ranking(),
        explainer,
        store,
        Variants.parse(variants),
        FakeCatalog(),
        AttributionTokens(b"k" * 32),
        ttl_s,
    )


def _budget() -> Budget:
    return Budget(time.monotonic() + 2.0)


async def test_a_served_result_is_explained_with_what_its_response_read(store):
    explainer = Explainer()
    core = _core(store, explainer)
    purchase = d.UserEvent("P3", d.EventKind.PURCHASE, 1.7e9, 2)
    store.append([d.RecordedEvent("e1", "17850", purchase)])
    page = await core.search("lantern", "17850", 20, False, _budget())
    store.append([d.RecordedEvent("e2", "17850", d.UserEvent("P4", d.EventKind.PURCHASE, 1.8e9, 1))])  # later
    out = await core.explain_result(page.attribution_token, ["P17", "P2"], _budget())
    assert explainer.calls == [
        dict(
            user_id="17850",
            query="lantern",
            product_ids=["P17", "P2"],
            variant="fused+explore=0.2",
            recent=[purchase],
            bundle_id=BUNDLE,
            all_evidence=True,
            shelf=None,
            context=[],
        )
    ]
    served = {i.product_id: i.score for i in page.items}
    assert [(i.product_id, i.score) for i in out.items] == [("P17", served["P17"]), ("P2", served["P2"])]
    assert out.items[0].price == d.Money("GBP", 1, 500_000_000)  # the catalogue's, as on the page
    assert [i.explanation.score for i in out.items] == [served["P17"], served["P2"]]
    assert out.variant == "fused+explore=0.2" and d.ModelVersion("bundle", BUNDLE) in out.versions
    # confidence against the served page, as the page's own explanations would have it
    assert out.items[1].explanation.confidence > 0.5 > out.items[0].explanation.confidence


async def test_bad_tokens_and_products_are_invalid_arguments_naming_the_field(store):
    core = _core(store, Explainer())
    page = await core.recommend("17850", 5, False, _budget())
    other = AttributionTokens(b"o" * 32).issue("fused")
    body, _, sig = page.attribution_token.partition(".")
    for token in ("", other, body[:-2] + "xx." + sig, "x" * 300):
        with pytest.raises(InvalidArgumentError) as info:
            await core.explain_result(token, ["P0"], _budget())
        assert [v.field for v in info.value.violations] == ["attribution_token"]
    for products, fields in (
        ([], ["product_ids"]),
        (["P0"] * 21, ["product_ids"]),
        (["P0", "P29", "P0"], ["product_ids[1]", "product_ids[2]"]),
    ):
        with pytest.raises(InvalidArgumentError) as info:
            await core.explain_result(page.attribution_token, products, _budget())
        assert [v.field for v in info.value.violations] == fields


async def test_expired_unkept_or_changed_results_are_failed_preconditions_never_other_scores(store):
    core = _core(store, Explainer(), ttl_s=0.05)
    page = await core.recommend("17850", 5, False, _budget())
    time.sleep(0.1)
    with pytest.raises(FailedPreconditionError) as info:
        await core.explain_result(page.attribution_token, ["P0"], _budget())
    assert info.value.reason == RESPONSE_NOT_KEPT
    unkept = AttributionTokens(b"k" * 32).issue("fused")  # valid, but no response was kept under it
    with pytest.raises(FailedPreconditionError):
        await _core(store, Explainer()).explain_result(unkept, ["P0"], _budget())
    drifted = _core(store, Explainer(drift=1e-3))
    page = await drifted.recommend("17850", 5, False, _budget())
    with pytest.raises(FailedPreconditionError) as info:
        await drifted.explain_result(page.attribution_token, ["P0"], _budget())
    assert info.value.reason == RESULT_CHANGED
    degraded = _core(store, Explainer(degraded=True))
    page = await degraded.recommend("17850", 5, False, _budget())
    with pytest.raises(UnavailableError):
        await degraded.explain_result(page.attribution_token, ["P0"], _budget())


def test_an_inner_failed_precondition_keeps_its_reason():
    import grpc
    from google.protobuf import any_pb2
    from google.rpc import error_details_pb2, status_pb2

    from services.gateway.clients import _domain_error

    detail = any_pb2.Any()
    detail.Pack(error_details_pb2.ErrorInfo(reason="BUNDLE_NOT_LOADED", metadata={"bundle_id": BUNDLE}))
    trailers = grpc.aio.Metadata(
        ("grpc-status-details-bin", status_pb2.Status(code=9, details=[detail]).SerializeToString())
    )
    err = _domain_error(
        grpc.aio.AioRpcError(grpc.StatusCode.FAILED_PRECONDITION, grpc.aio.Metadata(), trailers, "bundle gone"),
        "explanation",
    )
    assert isinstance(err, FailedPreconditionError)
    assert (err.reason, err.extra) == ("BUNDLE_NOT_LOADED", {"bundle_id": BUNDLE})


async def test_a_shelf_response_is_explained_on_its_shelf_with_its_context(store):
    explainer = Explainer()
    core = _core(store, explainer)
    page = await core.recommend("", 5, True, _budget(), d.Shelf.FREQUENTLY_BOUGHT_TOGETHER, ["P3", "P4"])
    served = explainer.calls[-1]
    await core.explain_result(page.attribution_token, [page.items[1].product_id], _budget())
    asked = explainer.calls[-1]
    assert (served["shelf"], served["context"]) == (d.Shelf.FREQUENTLY_BOUGHT_TOGETHER, ["P3", "P4"])
    assert (asked["shelf"], asked["context"]) == (served["shelf"], served["context"])
