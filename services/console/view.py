"""What the console shows, as plain data: pure functions over the gateway's protobuf answers (no I/O), so the
arithmetic a person reads off a chart is tested without a browser."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

from google.protobuf.json_format import MessageToDict
from shop.common.v1 import common_pb2 as pb

_WORD = re.compile(r"\w+", re.UNICODE)
EVIDENCE_LABELS = {
    pb.EVIDENCE_TYPE_PAST_PURCHASE: "you bought",
    pb.EVIDENCE_TYPE_QUERY_TERM: "query word",
    pb.EVIDENCE_TYPE_CO_PURCHASE_NEIGHBOUR: "bought together with",
    pb.EVIDENCE_TYPE_POPULARITY: "popularity",
    pb.EVIDENCE_TYPE_REPEAT_PURCHASE: "you bought it before",
    pb.EVIDENCE_TYPE_RECENT_EVENT: "your recent activity",
    pb.EVIDENCE_TYPE_QUERY_MATCH: "title matches your words",
    pb.EVIDENCE_TYPE_QUERY_SIMILAR: "similar to a query word",
    pb.EVIDENCE_TYPE_DISCOVERY: "new to you (explore arm)",
    pb.EVIDENCE_TYPE_PURCHASE_FREQUENCY: "your purchase frequency",
    pb.EVIDENCE_TYPE_SIMILAR_CUSTOMERS: "customers like you",
    pb.EVIDENCE_TYPE_BOUGHT_TOGETHER: "on this shelf: bought together with",
    pb.EVIDENCE_TYPE_SHARES_WITH: "on this shelf: similar to",
}


def highlight(title: str, query: str) -> list[tuple[str, bool]]:
    """`title` cut into (text, matched) runs: a word is matched when the query has it (case-insensitive)."""
    words = {w.lower() for w in _WORD.findall(query)}
    runs: list[tuple[str, bool]] = []
    pos = 0
    for m in _WORD.finditer(title):
        if m.group().lower() in words:
            if m.start() > pos:
                runs.append((title[pos : m.start()], False))
            runs.append((m.group(), True))
            pos = m.end()
    if pos < len(title):
        runs.append((title[pos:], False))
    return runs


def money_text(price: pb.ScoredProduct) -> str:
    """`ScoredProduct.price` for reading ("GBP 4.25"); empty when the answer carries none."""
    if not price.HasField("price"):
        return ""
    m = price.price
    return f"{m.currency_code} {m.units + m.nanos / 1e9:,.2f}"


def availability_text(value: int) -> str:
    name = pb.Availability.Name(value) if value in pb.Availability.values() else "AVAILABILITY_UNSPECIFIED"
    return name.removeprefix("AVAILABILITY_").replace("_", " ").lower() if value else ""


def evidence_label(ev: pb.Evidence) -> str:
    """What a bar of the waterfall stands for, in words: the kind and what it names."""
    kind = EVIDENCE_LABELS.get(ev.type, "other evidence")
    subject = ev.product.title or ev.product.product_id or ev.text
    return f"{kind}: {subject}" if subject else kind


@dataclass
class Bar:
    """One step of the waterfall: from `start` to `end` (the running score before and after it)."""

    label: str
    value: float
    start: float
    end: float
    kind: str  # "baseline", "evidence", "interaction", "score"


def waterfall(ex: pb.Explanation, top: int = 12) -> list[Bar]:
    """baseline -> the `top` pieces of evidence with the largest |contribution|, each signed, then the rest as one
    step -> the interaction -> the served score. The steps add up to score - baseline when the explanation lists
    every measured piece (as ExplainResult's do); the last bar is the score itself, so a gap would show as a jump."""
    bars = [Bar("baseline (every piece of evidence removed)", ex.baseline, 0.0, ex.baseline, "baseline")]
    running = ex.baseline
    ranked = sorted(ex.evidence, key=lambda ev: -abs(ev.contribution))
    steps = [(evidence_label(ev), ev.contribution) for ev in ranked[:top]]
    if rest := ranked[top:]:
        steps.append((f"{len(rest)} smaller pieces together", sum(ev.contribution for ev in rest)))
    for label, value in steps:
        bars.append(Bar(label, value, running, running + value, "evidence"))
        running += value
    bars.append(
        Bar(
            "interaction (effects that do not add up)", ex.interaction, running, running + ex.interaction, "interaction"
        )
    )
    bars.append(Bar("served score", ex.score, 0.0, ex.score, "score"))
    return bars


def _date(ts: object) -> str:
    return dt.datetime.fromtimestamp(ts.seconds, dt.timezone.utc).date().isoformat() if ts.seconds else ""


def timeline(ex: pb.Explanation) -> list[dict]:
    """The customer's past purchases the explanation measured, newest first, each with what it contributed."""
    kinds = (
        pb.EVIDENCE_TYPE_PAST_PURCHASE,
        pb.EVIDENCE_TYPE_REPEAT_PURCHASE,
        pb.EVIDENCE_TYPE_RECENT_EVENT,
        pb.EVIDENCE_TYPE_CO_PURCHASE_NEIGHBOUR,
    )
    rows = [
        {
            "title": ev.product.title or ev.product.product_id or "this product",
            "orders": ev.count,
            "last": _date(ev.last_time),
            "contribution": ev.contribution,
            "kind": evidence_label(ev).split(":")[0],
        }
        for ev in ex.evidence
        if ev.type in kinds
    ]
    return sorted(rows, key=lambda r: r["last"], reverse=True)


@dataclass
class Card:
    rank: int
    product_id: str
    title_runs: list[tuple[str, bool]]
    price: str
    availability: str
    score: float
    sources: list[str]
    sentence: str = ""
    model_scores: dict[str, float] = field(default_factory=dict)


def cards(results: Sequence[pb.ScoredProduct], query: str) -> list[Card]:
    return [
        Card(
            i + 1,
            r.product.product_id,
            highlight(r.product.title, query),
            money_text(r),
            availability_text(r.availability),
            r.score,
            [
                pb.CandidateSource.Name(s).removeprefix("CANDIDATE_SOURCE_").lower().replace("_", " ")
                for s in r.sources
                if s in pb.CandidateSource.values()
            ],
            r.explanation.sentence if r.HasField("explanation") else "",
            dict(r.model_scores),
        )
        for i, r in enumerate(results)
    ]


def degradations(items: Iterable[pb.Degradation]) -> list[str]:
    """Each stage that did not contribute fully, in words."""
    out = []
    for x in items:
        stage = pb.Stage.Name(x.stage).removeprefix("STAGE_").lower() if x.stage in pb.Stage.values() else "a stage"
        reason = x.reason.removeprefix(f"{stage}: ")  # services often lead with their own name
        out.append(f"{stage}{' (' + x.model + ')' if x.model else ''}: {reason}")
    return out


def versions(items: Iterable[pb.ModelVersion]) -> list[str]:
    return [f"{v.name} {v.version}" for v in items]


def why(response: object, product_id: str) -> dict:
    """The JSON the page's "Why?" draws: one result of an ExplainResultResponse."""
    result = next(r for r in response.results if r.product.product_id == product_id)
    ex = result.explanation
    bars = waterfall(ex)
    return {
        "product_id": product_id,
        "title": result.product.title,
        "score": result.score,
        "baseline": ex.baseline,
        "interaction": ex.interaction,
        "sentence": ex.sentence,
        "method": ex.method,
        "bars": [asdict(b) for b in bars],
        "timeline": timeline(ex),
        "evidence": [MessageToDict(ev, preserving_proto_field_name=True) for ev in ex.evidence],
        "variant": response.variant,
        "model_versions": versions(response.model_versions),
    }


def funnel(report: dict) -> list[dict]:
    """Rows of the A/B funnel chart from `make ab-report`'s reports/ab.json: per arm and stage, the share of
    responses reaching it with its 95 % Wilson interval."""
    return [
        {
            "arm": arm["variant"],
            "responses": arm["responses"],
            "stage": stage.lower().replace("_", " "),
            "rate": r["rate"],
            "low": r["low"],
            "high": r["high"],
            "successes": r["successes"],
            "trials": r["trials"],
        }
        for arm in report.get("arms", [])
        for stage, r in arm.get("rates", {}).items()
    ]
