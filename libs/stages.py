"""The gateway's ports to its downstream stages (retrieval, ranking, explanation) and what each answers: the gateway
core and the on-demand explanations program against these, services/gateway/clients.py implements them over gRPC."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from libs import domain as d
from libs.storefront import DEFAULT_FILTER, ProductFilter


@dataclass
class StageResult:
    items: list
    degradations: list[d.Degradation] = field(default_factory=list)
    versions: list[d.ModelVersion] = field(default_factory=list)
    corrected_query: str = ""  # retrieval of a query: the query as searched when a typo was corrected


class Retrieval(Protocol):
    async def query_candidates(
        self, query: str, user_id: str, limit: int, timeout: float, product_filter: ProductFilter = DEFAULT_FILTER
    ) -> StageResult: ...
    async def user_candidates(
        self,
        user_id: str,
        recent: Sequence[d.UserEvent],
        limit: int,
        timeout: float,
        shelf: d.Shelf = d.Shelf.FOR_YOU,
        context: Sequence[str] = (),
        product_filter: ProductFilter = DEFAULT_FILTER,
    ) -> StageResult: ...


class Ranking(Protocol):
    async def rank(
        self,
        user_id: str,
        query: str,
        candidates: Sequence[d.Candidate],
        page_size: int,
        variant: str,
        recent: Sequence[d.UserEvent],
        timeout: float,
    ) -> StageResult: ...


class Explainer(Protocol):
    async def explain(
        self,
        user_id: str,
        query: str,
        product_ids: Sequence[str],
        variant: str,
        recent: Sequence[d.UserEvent],
        timeout: float,
        bundle_id: str = "",
        all_evidence: bool = False,
        shelf: d.Shelf | None = None,
        context: Sequence[str] = (),
    ) -> StageResult: ...
