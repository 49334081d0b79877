"""Gateway logic: validate, retrieve -> rank -> explain within the caller's deadline, degrade
instead of failing, and record events. No protobuf here: ports hide the downstream services."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from libs import domain as d
from libs import validation
from libs.errors import (
    AlreadyExistsError,
    DeadlineError,
    FailedPreconditionError,
    FieldViolation,
    InvalidArgumentError,
    UnavailableError,
    invalid,
)
from libs.events import EventConflictError, EventStore, event_time_problem
from libs.events.base import payload
from libs.features import POOL_MAX
from libs.products.model import Product
from libs.experiments import AttributionTokens, ExplanationArms, Variants, present, shows_explanations
from libs.explain.wording import showing_results_for
from libs.on_demand import RESPONSE_NOT_KEPT, RESPONSE_TTL_S, ExplainedResults, OnDemand
from libs.scoring import experiment_variant, shelf_variant
from libs.stages import Explainer, Ranking, Retrieval, StageResult
from libs.storefront import MAX_RESULTS, Browse, PagePosition, PageTokens, fingerprint, ordered

log = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_EVENTS_PER_CALL = 500
MAX_EVENT_ID_CHARS = 64
# Any text but control characters (NUL cannot be stored in PostgreSQL text; none belongs in an id).
EVENT_ID_RE = re.compile(rf"[^\x00-\x1f\x7f]{{1,{MAX_EVENT_ID_CHARS}}}")
CANDIDATES = 200  # Search: retrieval's query candidates ranked per request
# Recommend asks for POOL_MAX: the rankers' whole candidate pool, the one `make eval` measures, uncut.
RECENT_SHARE = 0.25  # of the request's budget, for reading the user's recorded events


class CatalogReader(Protocol):
    """This replica's view of the catalogue (libs.products.view.CatalogView)."""

    stale: bool  # its last refresh failed (or none has run yet)

    def get(self, product_id: str) -> Product | None: ...
    async def unknown(self, product_ids: Sequence[str]) -> list[str]: ...


@dataclass
class Page:
    items: list[d.ScoredItem]
    attribution_token: str
    degradations: list[d.Degradation]
    versions: list[d.ModelVersion]
    variant: str
    next_page_token: str = ""
    corrected_query: str = ""  # Search: the query as searched when a typo was corrected
    searched: str = ""  # a later page: the query its kept list was ranked for


@dataclass
class Recorded:
    accepted: int
    duplicates: int
    unjoined_count: int  # events whose product the catalogue does not know yet (stored all the same)
    unjoined_product_ids: list[str]


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


class GatewayCore:
    def __init__(
        self,
        retrieval: Retrieval,
        ranking: Ranking,
        explainer: Explainer,
        events: EventStore,
        variants: Variants,
        catalog: CatalogReader,
        tokens: AttributionTokens | None = None,
        response_ttl_s: float = RESPONSE_TTL_S,
        explanation_arms: ExplanationArms | None = None,
    ) -> None:
        self.retrieval = retrieval
        self.ranking = ranking
        self.explainer = explainer
        self.events = events
        self.variants = variants
        self.catalog = catalog
        self.tokens = tokens or AttributionTokens.ephemeral()
        self.pages = PageTokens(self.tokens.derived_key("page_token"))
        self.explanation_arms = explanation_arms or ExplanationArms.parse("full:1")
        self.on_demand = OnDemand(explainer, events, self.tokens.response_id, response_ttl_s)

    async def search(
        self, query: str, user_id: str, page_size: int, explain: bool, budget: Budget, browse: Browse | None = None
    ) -> Page:
        """`browse`: filter, order and page token (libs.storefront); None = in-stock products by relevance, page 1."""
        browse = browse or Browse()
        request = fingerprint("search", query, user_id, page_size, browse.product_filter.key(), browse.order_by)
        if browse.page_token:
            page = await self._later_page(request, user_id, None, page_size, explain, browse, budget)
            # The kept list was ranked for the query as searched: a corrected one says so on every page.
            return _corrected(page, page.searched if page.searched != query else "")
        # Retrieval does not need the user's fresh events, so read them concurrently.
        recent_task = asyncio.create_task(self._recent(user_id, budget))
        try:
            retrieved = await self.retrieval.query_candidates(
                query, user_id, CANDIDATES, budget.share(0.35), browse.product_filter
            )
        finally:
            recent, degraded = await recent_task
        retrieved.degradations = degraded + retrieved.degradations
        # A corrected typo: ranking, explanations and the kept response read the query as searched.
        corrected = retrieved.corrected_query
        page = await self._rank_and_explain(
            user_id, corrected or query, retrieved, recent, page_size, explain, budget, browse=browse, request=request
        )
        return _corrected(page, corrected)

    async def recommend(
        self,
        user_id: str,
        page_size: int,
        explain: bool,
        budget: Budget,
        shelf: d.Shelf = d.Shelf.FOR_YOU,
        context: Sequence[str] = (),
        browse: Browse | None = None,
    ) -> Page:
        """`shelf` picks the candidates (libs.shelves); `context`: its context product ids, already validated;
        `browse`: filter, order and page token (libs.storefront)."""
        browse = browse or Browse()
        request = fingerprint(
            "recommend", user_id, shelf, sorted(context), page_size, browse.product_filter.key(), browse.order_by
        )
        if browse.page_token:
            return await self._later_page(request, user_id, shelf, page_size, explain, browse, budget)
        recent, degraded = await self._recent(user_id, budget)
        retrieved = await self.retrieval.user_candidates(
            user_id, recent, POOL_MAX, budget.share(0.35), shelf, context, browse.product_filter
        )
        retrieved.degradations = degraded + retrieved.degradations
        return await self._rank_and_explain(
            user_id, "", retrieved, recent, page_size, explain, budget, shelf, context, browse, request
        )

    async def _recent(self, user_id: str, budget: Budget) -> tuple[list[d.UserEvent], list[d.Degradation]]:
        """The user's recorded events; with the store down or slow, none, flagged (the dataset history still
        serves). A slice of the budget only: a store waiting out its connect timeout must not eat the request.

        The flag uses Stage.RETRIEVAL: the common proto has no events stage, and retrieval is the first stage
        that reads the user's history.
        """
        if not user_id:
            return [], []
        try:
            return await asyncio.wait_for(
                asyncio.to_thread(self.events.recent, user_id), budget.share(RECENT_SHARE)
            ), []
        except UnavailableError as exc:
            return [], [d.Degradation(d.Stage.RETRIEVAL, f"no fresh events: {exc}")]
        except TimeoutError:
            return [], [d.Degradation(d.Stage.RETRIEVAL, "no fresh events: the event store did not answer in time")]

    async def _rank_and_explain(
        self,
        user_id: str,
        query: str,
        retrieved: StageResult,
        recent: list[d.UserEvent],
        page_size: int,
        explain: bool,
        budget: Budget,
        shelf: d.Shelf | None = None,
        context: Sequence[str] = (),
        browse: Browse | None = None,
        request: str = "",
    ) -> Page:
        """`shelf`: the Recommend shelf (None for Search), carried in the attribution token; so is the explanation
        arm when explanations are asked for (what they show: libs.experiments.present). The first page: ranks up to
        MAX_RESULTS results, orders them (`browse.order_by`), keeps them for later pages (`request`: the fingerprint
        their page token is bound to) and on-demand explanations, and serves the first `page_size`."""
        browse = browse or Browse()
        variant = self.variants.assign(user_id)
        scored = shelf_variant(variant, shelf)  # ranking and explanation fuse with the shelf's weights
        shown = self.explanation_arms.assign(user_id) if explain else ""
        degradations = self._catalog_flag() + list(retrieved.degradations)
        versions: list[d.ModelVersion] = []
        # Again against this replica's catalogue: retrieval's copy may lag it by a poll.
        candidates = [c for c in retrieved.items if self._admits(browse, c.product_id)]
        if not candidates:
            # Nothing matched (or only the lexical half ran): an empty page is the answer, not a ranking error.
            return Page([], self.tokens.issue(variant, shelf, shown), degradations, versions, variant)
        ranked_list: list[d.ScoredItem] = []
        try:
            ranked = await self.ranking.rank(
                user_id, query, candidates, MAX_RESULTS, scored, recent, budget.share(0.6 if explain else 0.95)
            )
            ranked_list = ordered(ranked.items[:MAX_RESULTS], self._price, browse.order_by)
            items: list[d.ScoredItem] = ranked_list[:page_size]
            degradations += ranked.degradations
            versions += ranked.versions
        except (UnavailableError, DeadlineError) as exc:
            log.warning("ranking degraded: %s", exc)
            degradations.append(d.Degradation(d.Stage.RANKING, str(exc)))
            items = [
                d.ScoredItem(
                    c.product_id,
                    c.title,
                    c.retrieval_score,
                    {"retrieval": c.retrieval_score},
                    sorted({s.source for s in c.source_ranks}, key=lambda s: s.value),
                )
                for c in ordered(candidates, self._price, browse.order_by)[:page_size]
            ]
        token = self.tokens.issue(variant, shelf, shown)
        # A ranked list is kept (while its page is being explained), so that its results can be explained on demand
        # and its later pages served from it. Without ranking there is no list to keep: that answer is one page.
        kept = (
            asyncio.create_task(
                self.on_demand.keep(
                    token,
                    user_id,
                    query,
                    scored,
                    versions,
                    ranked_list,
                    recent,
                    budget.remaining(),
                    shelf,
                    context,
                    page_size,
                )
            )
            if versions
            else None
        )
        if explain and items:
            degradations += await self._explain(items, user_id, query, scored, recent, budget, shown, shelf, context)
        next_token = ""
        if kept is not None:
            not_kept = await kept
            degradations += not_kept
            if not not_kept and len(ranked_list) > page_size:
                next_token = self.pages.issue(
                    PagePosition(self.tokens.response_id(token, "attribution_token"), page_size), request
                )
        return Page(self._priced(items), token, degradations, versions, variant, next_token)

    async def _later_page(
        self,
        request: str,
        user_id: str,
        shelf: d.Shelf | None,
        page_size: int,
        explain: bool,
        browse: Browse,
        budget: Budget,
    ) -> Page:
        """A page after the first: a slice of the list the first page kept, with the scores, model scores and
        sources it ranked (events recorded since change nothing), minus products that stopped matching the filter
        since (sold out, say). Its explanations read what the list was ranked with (user, query, variant, bundle,
        recorded events), so they explain exactly the served scores; ExplainResult works with its attribution
        token as with the first page's."""
        position = self.pages.read(browse.page_token, request)
        try:
            record = await self.on_demand.kept(position.response_id, budget.share(RECENT_SHARE))
        except UnavailableError as exc:
            # Not a different list, and not one recomputed now: the caller starts again from the first page.
            raise FailedPreconditionError(
                f"the ranked list of the first page cannot be read: {exc}", RESPONSE_NOT_KEPT, {"store": "unavailable"}
            ) from exc
        if record.user_id != user_id:  # the fingerprint binds the user too; a belt for a leaked token
            raise FailedPreconditionError("the ranked list belongs to another request", RESPONSE_NOT_KEPT)
        details = record.details or tuple(({}, ()) for _ in record.results)
        window = zip(record.results[position.offset :], details[position.offset :])
        items = [
            d.ScoredItem(pid, title, score, dict(scores), list(sources))
            for (pid, title, score), (scores, sources) in list(window)[:page_size]
        ]
        items = [i for i in items if self._admits(browse, i.product_id)]
        degradations = self._catalog_flag()
        shown = self.explanation_arms.assign(user_id) if explain else ""
        if explain and items:
            degradations += await self._explain(
                items,
                record.user_id,
                record.query,
                record.variant,
                record.recent,
                budget,
                shown,
                d.Shelf(record.shelf) if record.shelf else None,
                record.context,
                record.bundle_id,
            )
        end = position.offset + page_size
        next_token = (
            self.pages.issue(PagePosition(record.response_id, end), request) if end < len(record.results) else ""
        )
        variant = experiment_variant(record.variant)  # the kept list's is what ranking was asked for (the shelf's)
        token = self.tokens.issue(variant, shelf, shown, response_id=record.response_id)
        page = Page(self._priced(items), token, degradations, list(record.versions), variant, next_token)
        page.searched = record.query
        return page

    async def _explain(
        self,
        items: list[d.ScoredItem],
        user_id: str,
        query: str,
        variant: str,
        recent: Sequence[d.UserEvent],
        budget: Budget,
        shown: str,
        shelf: d.Shelf | None = None,
        context: Sequence[str] = (),
        bundle_id: str = "",
    ) -> list[d.Degradation]:
        """Attach explanations to `items` as the explanation arm `shown` presents them (the "none" arm costs no
        call); explanation down, late or without the bundle = none, flagged."""
        if not shows_explanations(shown):
            return []
        try:
            # A later page names the bundle it was ranked with; the first page is ranked by the current one.
            pinned = {"bundle_id": bundle_id} if bundle_id else {}
            explained = await self.explainer.explain(
                user_id,
                query,
                [i.product_id for i in items],
                variant,
                recent,
                budget.share(0.95),
                shelf=shelf,
                context=context,
                **pinned,
            )
        except (UnavailableError, DeadlineError, FailedPreconditionError) as exc:
            # FailedPrecondition: a later page's bundle is no longer loaded; the page is served, unexplained.
            log.warning("explanation degraded: %s", exc)
            return [d.Degradation(d.Stage.EXPLANATION, str(exc))]
        for item, explanation in zip(items, explained.items):
            item.explanation = present(shown, explanation)
        return explained.degradations

    def _catalog_flag(self) -> list[d.Degradation]:
        if self.catalog.stale:
            return [d.Degradation(d.Stage.CATALOG, "catalogue not refreshed: availability and prices as last read")]
        return []

    async def explain_result(self, token: str, product_ids: Sequence[str], budget: Budget) -> ExplainedResults:
        """Results of a served response, explained with exactly the scores it served (libs.on_demand)."""
        out = await self.on_demand.explain(token, product_ids, budget.share(0.95))
        out.items = self._priced(out.items)
        return out

    def _priced(self, items: list[d.ScoredItem]) -> list[d.ScoredItem]:
        """With the catalogue's price and availability as this replica reads them now."""
        for item in items:
            if (product := self.catalog.get(item.product_id)) is not None:
                item.price, item.availability = product.content.price, product.content.availability
        return items

    def _admits(self, browse: Browse, product_id: str) -> bool:
        """The request's filter against this replica's catalogue (sold-out and discontinued products are not served
        unless asked; ones the catalogue lacks are, the bundle knows them)."""
        product = self.catalog.get(product_id)
        return browse.product_filter.matches(product_id, None if product is None else product.content)

    def _price(self, product_id: str) -> d.Money | None:
        product = self.catalog.get(product_id)
        return None if product is None else product.content.price

    async def record_events(self, events: Sequence[tuple[str, str, str, d.UserEvent | None]]) -> Recorded:
        """events: (event_id, user_id, attribution_token, event or None when its type is unknown).

        All or nothing: any bad field is INVALID_ARGUMENT, an event_id stored before with another payload is
        ALREADY_EXISTS, a database in trouble is UNAVAILABLE; in each case nothing of the call is stored. An event
        whose product the catalogue does not know yet is stored and reported as unjoined: it joins its product
        when the catalogue gets it (readers of the events look products up when they read).
        """
        if not events:
            raise invalid("events", "must contain at least one event")
        if len(events) > MAX_EVENTS_PER_CALL:
            raise invalid("events", f"at most {MAX_EVENTS_PER_CALL} events per call (got {len(events)})")
        now = time.time()
        violations: list[FieldViolation] = []
        records: dict[str, tuple[int, d.RecordedEvent]] = {}  # event_id -> (first index, event)
        for i, (event_id, user_id, token, event) in enumerate(events):
            at = f"events[{i}]"
            if not EVENT_ID_RE.fullmatch(event_id):
                violations.append(
                    FieldViolation(
                        f"{at}.event_id", f"must be 1..{MAX_EVENT_ID_CHARS} characters, none of them control characters"
                    )
                )
            if event is None:
                violations.append(FieldViolation(f"{at}.type", "must be a known EventType other than UNSPECIFIED"))
            elif why := validation.product_id_problem(event.product_id):
                violations.append(FieldViolation(f"{at}.product_id", why))
            elif event.quantity < 1:
                violations.append(FieldViolation(f"{at}.quantity", "must not be negative"))
            elif problem := event_time_problem(event.ts, now):
                violations.append(FieldViolation(f"{at}.event_time", problem))
            try:
                validation.user_id(user_id, f"{at}.user_id", required=True)
                variant = self.tokens.variant_of(token, f"{at}.attribution_token")
            except InvalidArgumentError as exc:
                violations += exc.violations
                continue
            if event is None:
                continue
            record = d.RecordedEvent(event_id, user_id, event, token, variant)
            if event_id not in records:
                records[event_id] = (i, record)
            elif payload(records[event_id][1]) != payload(record):
                violations.append(
                    FieldViolation(f"{at}.event_id", f"repeats events[{records[event_id][0]}] with a different payload")
                )
        if violations:
            raise InvalidArgumentError(violations)
        try:
            accepted, duplicates = await asyncio.to_thread(self.events.append, [r for _, r in records.values()])
        except EventConflictError as exc:
            raise AlreadyExistsError(
                "shop.gateway.v1.Event",
                [
                    FieldViolation(
                        f"events[{records[event_id][0]}].event_id",
                        f"{event_id!r} was stored before with a different payload",
                    )
                    for event_id in exc.event_ids
                ],
            ) from exc
        products = [e.product_id for _, _, _, e in events if e is not None]
        unjoined = await self.catalog.unknown(products)
        missing = set(unjoined)
        # Repeats of an id inside one call are duplicates too.
        return Recorded(
            accepted, duplicates + len(events) - len(records), sum(p in missing for p in products), unjoined
        )


def _corrected(page: Page, corrected: str) -> Page:
    """A Search answered for a corrected query says so, in the response and in each explanation."""
    if corrected:
        page.corrected_query = corrected
        for item in page.items:
            if item.explanation is not None:
                item.explanation.sentence = showing_results_for(corrected, item.explanation.sentence)
    return page
