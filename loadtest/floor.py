"""The in-process floor: the gateway's request path with every gRPC hop removed.

The same core logic the four services run - GatewayCore orchestrating RetrievalCore, RankingCore and
ExplanationCore - in one process and one event loop, with the same model.onnx files in in-process ONNX Runtime
(libs.onnx_runner: the `infer` signature of the Triton client) instead of Triton. It is the physical reference
`make load` measures the served gateway against, in the same run and on the same request mix: what is left
between the two is the cost of the processes, gRPC hops and Triton. Each stage's wall time is recorded.
"""

from __future__ import annotations

import tempfile
import time
from collections import OrderedDict, defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from libs import domain as d
from libs.bundles import load_bundle
from libs.config import REPOSITORY, artifacts_dir
from libs.errors import DeadlineError, InvalidArgumentError, UnavailableError
from libs.events.sqlite import SqliteEventStore
from libs.onnx_runner import OnnxModels
from libs.products.catalog import dataset_products
from libs.products.store import SqliteProductStore
from libs.products.view import CatalogView
from libs.scoring import EncodeQuery
from libs.serving_state import load_serving_state
from libs.triton.text import encoder
from libs.explain.core import ExplanationCore
from libs.gateway import Budget, GatewayCore
from libs.stages import StageResult
from libs.storefront import DEFAULT_FILTER, ProductFilter
from libs.experiments import Variants
from libs.ranking import RankingCore
from libs.retrieval import RetrievalCore


class StageTimes:
    def __init__(self) -> None:
        self.seconds: dict[str, list[float]] = defaultdict(list)

    def add(self, stage: str, started: float) -> None:
        self.seconds[stage].append(time.perf_counter() - started)

    def summary(self) -> dict[str, dict[str, float]]:
        return {
            s: {"calls": len(v), "p50_ms": float(np.percentile(v, 50)) * 1000, "mean_ms": float(np.mean(v)) * 1000}
            for s, v in self.seconds.items()
            if v
        }


class _Retrieval:
    def __init__(self, core: RetrievalCore, times: StageTimes) -> None:
        self.core, self.times = core, times

    async def query_candidates(
        self, query: str, user_id: str, limit: int, timeout: float, product_filter: ProductFilter = DEFAULT_FILTER
    ) -> StageResult:
        t = time.perf_counter()
        items, degradations, corrected = await self.core.query_candidates(
            query, user_id, limit, timeout, product_filter=product_filter
        )
        self.times.add("retrieval", t)
        return StageResult(items, degradations, corrected_query=corrected)

    async def user_candidates(
        self,
        user_id: str,
        recent: Sequence[d.UserEvent],
        limit: int,
        timeout: float,
        shelf: d.Shelf = d.Shelf.FOR_YOU,
        context: Sequence[str] = (),
        product_filter: ProductFilter = DEFAULT_FILTER,
    ) -> StageResult:
        t = time.perf_counter()
        items, degradations = await self.core.user_candidates(user_id, recent, limit, shelf, context, product_filter)
        self.times.add("retrieval", t)
        return StageResult(items, degradations)


class _Ranking:
    def __init__(self, core: RankingCore, times: StageTimes) -> None:
        self.core, self.times = core, times

    async def rank(
        self,
        user_id: str,
        query: str,
        candidates: Sequence[d.Candidate],
        page_size: int,
        variant: str,
        recent: Sequence[d.UserEvent],
        timeout: float,
    ) -> StageResult:
        t = time.perf_counter()
        ranked = await self.core.rank(
            user_id, query, [c.product_id for c in candidates], page_size, variant, 0.0, recent, timeout
        )
        self.times.add("ranking", t)
        return StageResult(ranked.items, ranked.degradations, ranked.versions)


class _Explainer:
    def __init__(self, core: ExplanationCore, times: StageTimes) -> None:
        self.core, self.times = core, times

    async def explain(
        self,
        user_id: str,
        query: str,
        product_ids: Sequence[str],
        variant: str,
        recent: Sequence[d.UserEvent],
        timeout: float,
        shelf: d.Shelf | None = None,
        context: Sequence[str] = (),
    ) -> StageResult:
        t = time.perf_counter()
        out = await self.core.explain(
            user_id, query, product_ids, variant, recent, timeout, shelf=shelf, context=context
        )
        self.times.add("explanation", t)
        return StageResult(out.explanations, out.degradations)


def cached(encode: EncodeQuery, size: int = 65536) -> EncodeQuery:
    """The floor's stand-in for Triton's response cache on the text encoder (same key: the texts of one call), so
    the gateway and the floor are compared with the same caching."""
    memo: OrderedDict[tuple[str, ...], np.ndarray] = OrderedDict()

    async def encode_cached(texts: Sequence[str], timeout_s: float | None = None) -> np.ndarray:
        key = tuple(texts)
        if key in memo:
            memo.move_to_end(key)
            return memo[key]
        memo[key] = out = await encode(texts, timeout_s)
        if len(memo) > size:
            memo.popitem(last=False)
        return out

    return encode_cached


class InProcessShop:
    """Build once (loads the dataset, feature store and ONNX sessions), then `call` like the load driver does."""

    def __init__(
        self, artifacts: Path | None = None, repository: Path = REPOSITORY, deadline_s: float = 2.0, threads: int = 1
    ) -> None:
        artifacts = artifacts or artifacts_dir()
        bundle = load_bundle(artifacts)  # what the services serve: the current bundle's side files and versions
        state = load_serving_state(artifacts, bundle)
        models = OnnxModels(repository, version=str(bundle.number), threads=threads)
        encode = cached(encoder(models))

        async def version(model: str) -> str:
            return bundle.versions.get(model, models.version)

        titles = state.dataset.items["title"]
        self.times = StageTimes()
        self._events_dir = tempfile.TemporaryDirectory(prefix="floor-events-")
        db = Path(self._events_dir.name) / "events.sqlite3"
        products = SqliteProductStore(db)
        products.seed(dataset_products(state.dataset.items), time.time())
        catalog = CatalogView(products)
        catalog.catch_up()
        retrieval = RetrievalCore.over_store(
            state.store,
            state.dataset.items["product_id"],
            titles,
            encode,
            product=lambda pid: None if (p := catalog.get(pid)) is None else p.content,  # as services/retrieval
        )
        ranking = RankingCore(state.store, titles, state.fusion, models.infer, encode, version)
        explanation = ExplanationCore(state.store, titles, state.fusion, models.infer, encode)
        self.core = GatewayCore(
            _Retrieval(retrieval, self.times),
            _Ranking(ranking, self.times),
            _Explainer(explanation, self.times),
            SqliteEventStore(db),
            Variants.parse("fused:1"),
            catalog,
        )
        self.deadline_s = deadline_s

    async def call(self, rpc: str, request: object) -> tuple[str, bool]:
        """Same contract as loadtest.driver's gateway_call: (status code name, degraded?)."""
        budget = Budget(time.monotonic() + self.deadline_s)
        page_size = request.page_size or 20
        try:
            if rpc == "Search":
                page = await self.core.search(request.query, request.user_id, page_size, request.explain, budget)
            else:
                page = await self.core.recommend(request.user_id, page_size, request.explain, budget)
        except InvalidArgumentError:
            return "INVALID_ARGUMENT", False
        except UnavailableError:
            return "UNAVAILABLE", False
        except DeadlineError:
            return "DEADLINE_EXCEEDED", False
        return "OK", bool(page.degradations)

    def close(self) -> None:
        self.core.events.close()
        self._events_dir.cleanup()
