"""On-demand "Why this?": explain some results of a response already served, with exactly the scores it served.

A response's attribution token is signed and at most 256 characters, so it cannot carry what the explanation needs
(a query of up to 512 characters, the page of up to 100 products with their scores, the user's recorded events).
The gateway therefore keeps that per response in the event store's database (`responses`, keyed by the token's id,
deleted after `ttl_s`), and ExplainResult reads it back: the same user, query, variant and recorded events go to the
explanation service, which must hold the bundle that served the response. Explaining k products costs one
masked-scenario batch of k candidates per ranker, whatever the page size.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from libs import domain as d
from libs.bundles import BUNDLE_MODEL
from libs.errors import (
    DeadlineError,
    FailedPreconditionError,
    FieldViolation,
    InvalidArgumentError,
    UnavailableError,
    invalid,
)
from libs.events import EventStore
from libs.explain.wording import confidence
from libs.scoring import experiment_variant
from libs.stages import Explainer

log = logging.getLogger(__name__)

MAX_PRODUCTS = 20
RESPONSE_TTL_S = 3600.0  # how long a response can be explained on demand: while its page is likely still open
# Keeping a response's record waits at most this long (a share of what is left of the request's budget, at most
# KEEP_MAX_S): a local insert takes about a millisecond; longer means the database is in trouble.
KEEP_SHARE = 0.9
KEEP_MAX_S = 0.1
RESPONSE_NOT_KEPT = "RESPONSE_NOT_KEPT"
RESULT_CHANGED = "RESULT_CHANGED"
# Served and explained scores are float32 on the wire; the same computation gives the same float32.
SCORE_TOLERANCE = 1e-6


@dataclass
class ExplainedResults:
    items: list[d.ScoredItem]
    versions: list[d.ModelVersion]
    variant: str


class OnDemand:
    def __init__(
        self,
        explainer: Explainer,
        events: EventStore,
        response_id: Callable[[str, str], str],
        ttl_s: float = RESPONSE_TTL_S,
    ) -> None:
        """`response_id(token, field)`: the id a verified attribution token carries (INVALID_ARGUMENT otherwise)."""
        self.explainer = explainer
        self.events = events
        self.response_id = response_id
        self.ttl_s = ttl_s

    async def keep(
        self,
        token: str,
        user_id: str,
        query: str,
        variant: str,
        versions: Sequence[d.ModelVersion],
        items: Sequence[d.ScoredItem],
        recent: Sequence[d.UserEvent],
        timeout: float,
        shelf: d.Shelf | None = None,
        context: Sequence[str] = (),
        page_size: int = 0,
    ) -> list[d.Degradation]:
        """Store what a ranked response served (`items`: its whole ranked list, cut into pages of `page_size`, 0 =
        one page); trouble costs its on-demand explanations and its later pages (a degradation)."""
        timeout = min(timeout * KEEP_SHARE, KEEP_MAX_S)
        if timeout <= 0.001:
            return [d.Degradation(d.Stage.EXPLANATION, "not kept for on-demand explanations: no time left")]
        bundle = next((v.version for v in versions if v.name == BUNDLE_MODEL), "")
        record = d.ServedResponse(
            self.response_id(token, "attribution_token"),
            time.time(),
            user_id,
            query,
            variant,
            bundle,
            tuple((i.product_id, i.title, i.score) for i in items),
            tuple(recent),
            shelf.value if shelf is not None else "",
            tuple(context),
            page_size,
            tuple((dict(i.model_scores), tuple(i.sources)) for i in items),
            tuple(versions),
        )
        try:
            await asyncio.wait_for(asyncio.to_thread(self.events.keep_response, record), timeout)
            return []
        except (UnavailableError, TimeoutError) as exc:
            # A timed-out insert may still land: then the "Why?" works after all.
            why = str(exc) or "the event store did not answer in time"
            log.warning("response not kept for on-demand explanations: %s", why)
            return [d.Degradation(d.Stage.EXPLANATION, f"not kept for on-demand explanations: {why}")]

    async def kept(self, response_id: str, timeout: float) -> d.ServedResponse:
        """The kept response; FAILED_PRECONDITION (RESPONSE_NOT_KEPT) when it is gone (expired, or never kept):
        never a different list. UnavailableError when the store cannot be read."""
        try:
            record = await asyncio.wait_for(asyncio.to_thread(self.events.served_response, response_id), timeout)
        except TimeoutError:
            raise DeadlineError("the event store did not answer in time") from None
        if record is None or record.created < time.time() - self.ttl_s:
            raise FailedPreconditionError(
                f"the response is not kept (older than {self.ttl_s:.0f} s, or served without ranking)",
                RESPONSE_NOT_KEPT,
                {"ttl_s": f"{self.ttl_s:.0f}"},
            )
        return record

    async def explain(self, token: str, product_ids: Sequence[str], timeout: float) -> ExplainedResults:
        response_id = self.response_id(token, "attribution_token")
        if not 1 <= len(product_ids) <= MAX_PRODUCTS:
            raise invalid(
                "product_ids", f"must name 1..{MAX_PRODUCTS} results of the response (got {len(product_ids)})"
            )
        started = time.monotonic()
        record = await self.kept(response_id, timeout)
        served = {pid: (title, score) for pid, title, score in record.results}
        _check_products(product_ids, served)
        left = timeout - (time.monotonic() - started)
        if left <= 0.005:
            raise DeadlineError("deadline exceeded before the explanation could start")
        out = await self.explainer.explain(
            record.user_id,
            record.query,
            list(product_ids),
            record.variant,
            record.recent,
            left,
            bundle_id=record.bundle_id,
            all_evidence=True,
            shelf=d.Shelf(record.shelf) if record.shelf else None,
            context=record.context,
        )
        if out.degradations:  # a ranker missing: the score would not be the one served
            raise UnavailableError("explanation: " + "; ".join(x.reason for x in out.degradations))
        scores = [score for _, _, score in record.results]
        position = {pid: i for i, (pid, _, _) in enumerate(record.results)}
        items = []
        for pid, explanation in zip(product_ids, out.items):
            page = _page_of(scores, position[pid], record.page_size)
            title, score = served[pid]
            if abs(explanation.score - score) > SCORE_TOLERANCE * max(1.0, abs(score)):
                raise FailedPreconditionError(
                    f"{pid}: explained score {explanation.score} is not the served {score}",
                    RESULT_CHANGED,
                    {"product_id": pid},
                )
            explanation.confidence = confidence(score, page)  # against the served page, as the page's own
            items.append(d.ScoredItem(pid, title, score, explanation=explanation))
        return ExplainedResults(items, out.versions, experiment_variant(record.variant))


def _page_of(scores: Sequence[float], index: int, page_size: int) -> Sequence[float]:
    """The served scores of the page that held result `index` (page_size 0: the results are one page)."""
    if page_size <= 0:
        return scores
    start = index - index % page_size
    return scores[start : start + page_size]


def _check_products(product_ids: Sequence[str], served: dict) -> None:
    violations = []
    for i, pid in enumerate(product_ids):
        if pid not in served:
            violations.append(FieldViolation(f"product_ids[{i}]", f"{pid!r} is not a result of that response"))
        elif pid in product_ids[:i]:
            violations.append(FieldViolation(f"product_ids[{i}]", f"repeats product_ids[{product_ids.index(pid)}]"))
    if violations:
        raise InvalidArgumentError(violations)
