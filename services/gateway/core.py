"""Gateway logic: validate, retrieve -> rank -> explain within the caller's deadline, degrade
instead of failing, and record events. No protobuf here: ports hide the downstream services."""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from libs import domain as d
from libs import validation
from libs.errors import DeadlineError, FieldViolation, InvalidArgumentError, UnavailableError, invalid
from libs.events import EventStore
from services.gateway.experiments import AttributionTokens, Variants

log = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_EVENTS_PER_CALL = 500
CANDIDATES = 200


@dataclass
class StageResult:
    items: list
    degradations: list[d.Degradation] = field(default_factory=list)
    versions: list[d.ModelVersion] = field(default_factory=list)


class Retrieval(Protocol):
    async def query_candidates(self, query: str, user_id: str, limit: int, timeout: float) -> StageResult: ...
    async def user_candidates(self, user_id: str, recent: Sequence[d.UserEvent], limit: int,
                              timeout: float) -> StageResult: ...


class Ranking(Protocol):
    async def rank(self, user_id: str, query: str, candidates: Sequence[d.Candidate], page_size: int,
                   variant: str, recent: Sequence[d.UserEvent], timeout: float) -> StageResult: ...


class Explainer(Protocol):
    async def explain(self, user_id: str, query: str, product_ids: Sequence[str], variant: str,
                      recent: Sequence[d.UserEvent], timeout: float) -> StageResult: ...


@dataclass
class Page:
    items: list[d.ScoredItem]
    attribution_token: str
    degradations: list[d.Degradation]
    versions: list[d.ModelVersion]
    variant: str


@dataclass
class Budget:
    """The request's deadline, shared out between stages."""

    deadline: float  # time.monotonic() value

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def share(self, fraction: float) -> float:
        left = self.remaining()
        if left <= 0.005:
            raise DeadlineError("deadline exceeded before the stage could start")
        return left * fraction


def query_relevant(candidates: list[d.Candidate], page_size: int) -> list[d.Candidate]:
    """Candidates that match a query term, when there are enough of them to fill the page.

    The rankers order by purchase propensity; dense-only neighbours of the query (fairy lights for "lantern")
    would otherwise outrank what the shopper typed. With too few lexical matches (typos, synonyms) the dense
    candidates stay in.
    """
    matched = [c for c in candidates if c.matched_terms]
    return matched if len(matched) >= page_size else candidates


class GatewayCore:
    def __init__(self, retrieval: Retrieval, ranking: Ranking, explainer: Explainer, events: EventStore,
                 variants: Variants, known_product: Callable[[str], bool],
                 tokens: AttributionTokens | None = None) -> None:
        self.retrieval = retrieval
        self.ranking = ranking
        self.explainer = explainer
        self.events = events
        self.variants = variants
        self.known_product = known_product
        self.tokens = tokens or AttributionTokens.ephemeral()

    async def search(self, query: str, user_id: str, page_size: int, explain: bool, budget: Budget) -> Page:
        # Retrieval does not need the user's fresh events, so read them concurrently.
        recent_task = asyncio.create_task(self._recent(user_id))
        try:
            retrieved = await self.retrieval.query_candidates(query, user_id, CANDIDATES, budget.share(0.35))
        finally:
            recent = await recent_task
        retrieved.items = query_relevant(retrieved.items, page_size)
        return await self._rank_and_explain(user_id, query, retrieved, recent, page_size, explain, budget)

    async def recommend(self, user_id: str, page_size: int, explain: bool, budget: Budget) -> Page:
        recent = await self._recent(user_id)
        retrieved = await self.retrieval.user_candidates(user_id, recent, CANDIDATES, budget.share(0.35))
        return await self._rank_and_explain(user_id, "", retrieved, recent, page_size, explain, budget)

    async def _recent(self, user_id: str) -> list[d.UserEvent]:
        return await asyncio.to_thread(self.events.recent, user_id) if user_id else []

    async def _rank_and_explain(self, user_id: str, query: str, retrieved: StageResult,
                                recent: list[d.UserEvent], page_size: int, explain: bool, budget: Budget) -> Page:
        variant = self.variants.assign(user_id)
        degradations = list(retrieved.degradations)
        versions: list[d.ModelVersion] = []
        candidates: list[d.Candidate] = retrieved.items
        if not candidates:
            # Nothing matched (or only the lexical half ran): an empty page is the answer, not a ranking error.
            return Page([], self.tokens.issue(variant), degradations, versions, variant)
        try:
            ranked = await self.ranking.rank(user_id, query, candidates, page_size, variant, recent,
                                             budget.share(0.6 if explain else 0.95))
            items: list[d.ScoredItem] = ranked.items[:page_size]
            degradations += ranked.degradations
            versions += ranked.versions
        except (UnavailableError, DeadlineError) as exc:
            log.warning("ranking degraded: %s", exc)
            degradations.append(d.Degradation(d.Stage.RANKING, str(exc)))
            items = [d.ScoredItem(c.product_id, c.title, c.retrieval_score, {"retrieval": c.retrieval_score},
                                  sorted({s.source for s in c.source_ranks}, key=lambda s: s.value))
                     for c in candidates[:page_size]]
        if explain and items:
            try:
                explained = await self.explainer.explain(user_id, query, [i.product_id for i in items], variant,
                                                         recent, budget.share(0.95))
                for item, explanation in zip(items, explained.items):
                    item.explanation = explanation
                degradations += explained.degradations
            except (UnavailableError, DeadlineError) as exc:
                log.warning("explanation degraded: %s", exc)
                degradations.append(d.Degradation(d.Stage.EXPLANATION, str(exc)))
        return Page(items, self.tokens.issue(variant), degradations, versions, variant)

    async def record_events(self, events: Sequence[tuple[str, str, str, d.UserEvent | None]]) -> tuple[int, int]:
        """events: (event_id, user_id, attribution_token, event or None when its type is unknown)."""
        if not events:
            raise invalid("events", "must contain at least one event")
        if len(events) > MAX_EVENTS_PER_CALL:
            raise invalid("events", f"at most {MAX_EVENTS_PER_CALL} events per call (got {len(events)})")
        violations: list[FieldViolation] = []
        records: list[d.RecordedEvent] = []
        seen: set[str] = set()
        for i, (event_id, user_id, token, event) in enumerate(events):
            at = f"events[{i}]"
            if not (1 <= len(event_id) <= 64):
                violations.append(FieldViolation(f"{at}.event_id", "must be 1..64 characters"))
            if event is None:
                violations.append(FieldViolation(f"{at}.type", "must be a known EventType other than UNSPECIFIED"))
            elif not self.known_product(event.product_id):
                violations.append(FieldViolation(f"{at}.product_id", "is not a product of the catalogue"))
            elif event.quantity < 1:
                violations.append(FieldViolation(f"{at}.quantity", "must not be negative"))
            try:
                validation.user_id(user_id, f"{at}.user_id", required=True)
                variant = self.tokens.variant_of(token, f"{at}.attribution_token")
            except InvalidArgumentError as exc:
                violations += exc.violations
                continue
            if event is not None and event_id not in seen:
                seen.add(event_id)
                records.append(d.RecordedEvent(event_id, user_id, event, token, variant))
        if violations:
            raise InvalidArgumentError(violations)
        accepted, duplicates = await asyncio.to_thread(self.events.append, records)
        # Repeats of an id inside one call are duplicates too.
        return accepted, duplicates + len(events) - len(records)
