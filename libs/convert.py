"""Domain <-> protobuf conversion, in one place for every servicer.

Enum values read from the wire follow one policy, `enum_from_pb`: UNSPECIFIED, and any value this build does
not know (a peer built from newer protos may send one), read as None ("unspecified"), never as an error here:
- a REQUIRED field of a public request must not be unspecified: the core rejects it with INVALID_ARGUMENT naming
  the field (RecordEvents' `events[i].type`);
- anywhere else the rest of the message is kept where it means something without the value (a Degradation
  keeps its reason and model, an Evidence its product and contribution; None goes back out as UNSPECIFIED) and
  dropped where it does not (a candidate source, a source rank, a recent event of unknown type).

Well-known types read from a request (Timestamp, and any added later) are converted here only, each by one
function that names the field's path in the INVALID_ARGUMENT it raises: a servicer never calls their methods itself
(tests/unit/libs/test_convert.py checks), since those raise ValueError on values a client can send.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import TypeVar

from google.protobuf import timestamp_pb2
from google.type import money_pb2
from shop.catalog.v1 import catalog_service_pb2 as catpb
from shop.common.v1 import common_pb2 as pb
from shop.gateway.v1 import gateway_service_pb2 as gpb
from shop.retrieval.v1 import retrieval_service_pb2 as rpb

from libs import domain as d
from libs.errors import InvalidArgumentError, invalid
from libs.products.model import Product, ProductContent

E = TypeVar("E", bound=enum.Enum)
# google.protobuf.Timestamp's documented range: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59.999999999Z.
MIN_TIMESTAMP_S = -62_135_596_800
MAX_TIMESTAMP_S = 253_402_300_799


def _enum_map(domain_cls: type[E], proto_enum, prefix: str) -> dict[E, int]:
    return {m: proto_enum.Value(f"{prefix}_{m.value}") for m in domain_cls}


_SOURCE = _enum_map(d.Source, pb.CandidateSource, "CANDIDATE_SOURCE")
_EVIDENCE = _enum_map(d.EvidenceKind, pb.EvidenceType, "EVIDENCE_TYPE")
_STAGE = _enum_map(d.Stage, pb.Stage, "STAGE")
_EVENT = _enum_map(d.EventKind, pb.EventType, "EVENT_TYPE")
_AVAILABILITY = _enum_map(d.Availability, pb.Availability, "AVAILABILITY")
_SHELF = _enum_map(d.Shelf, pb.Shelf, "SHELF")
_BACK = {
    cls: {v: k for k, v in mapping.items()}
    for cls, mapping in (
        (d.Source, _SOURCE),
        (d.EvidenceKind, _EVIDENCE),
        (d.Stage, _STAGE),
        (d.EventKind, _EVENT),
        (d.Availability, _AVAILABILITY),
        (d.Shelf, _SHELF),
    )
}


def enum_from_pb(domain_cls: type[E], value: int) -> E | None:
    """The domain member for a wire value; None for UNSPECIFIED and unknown values (see the module docstring)."""
    return _BACK[domain_cls].get(value)


def shelf_from_pb(value: int, field: str = "shelf") -> d.Shelf:
    """UNSPECIFIED is FOR_YOU; a value this build does not know is INVALID_ARGUMENT (not a silent default)."""
    if value == pb.SHELF_UNSPECIFIED:
        return d.Shelf.FOR_YOU
    shelf = enum_from_pb(d.Shelf, value)
    if shelf is None:
        raise invalid(field, f"must be a known Shelf (got {value})")
    return shelf


def shelf_to_pb(shelf: d.Shelf) -> int:
    return _SHELF[shelf]


def _enum_to_pb(mapping: Mapping[E, int], member: E | None) -> int:
    return 0 if member is None else mapping[member]  # 0 is *_UNSPECIFIED in every enum


def degradation_to_pb(x: d.Degradation) -> pb.Degradation:
    return pb.Degradation(stage=_enum_to_pb(_STAGE, x.stage), reason=x.reason, model=x.model)


def degradation_from_pb(x: pb.Degradation) -> d.Degradation:
    return d.Degradation(enum_from_pb(d.Stage, x.stage), x.reason, x.model)


def version_to_pb(v: d.ModelVersion) -> pb.ModelVersion:
    return pb.ModelVersion(name=v.name, version=v.version)


def version_from_pb(v: pb.ModelVersion) -> d.ModelVersion:
    return d.ModelVersion(v.name, v.version)


def _evidence_to_pb(ev: d.Evidence) -> pb.Evidence:
    product = pb.ProductRef(product_id=ev.product_id, title=ev.title) if ev.product_id else None
    msg = pb.Evidence(
        type=_enum_to_pb(_EVIDENCE, ev.kind),
        product=product,
        text=ev.text,
        contribution=ev.contribution,
        count=ev.count,
        window_days=ev.window_days,
        interval_days=ev.interval_days,
    )
    if ev.last_time:
        msg.last_time.FromMicroseconds(round(ev.last_time * 1e6))
    return msg


def _evidence_from_pb(ev: pb.Evidence) -> d.Evidence:
    return d.Evidence(
        kind=enum_from_pb(d.EvidenceKind, ev.type),
        contribution=ev.contribution,
        product_id=ev.product.product_id,
        title=ev.product.title,
        text=ev.text,
        count=ev.count,
        window_days=ev.window_days,
        last_time=ev.last_time.seconds + ev.last_time.nanos / 1e9 if ev.HasField("last_time") else 0.0,
        interval_days=ev.interval_days,
    )


def explanation_to_pb(e: d.Explanation) -> pb.Explanation:
    return pb.Explanation(
        evidence=[_evidence_to_pb(ev) for ev in e.evidence],
        sentence=e.sentence,
        confidence=e.confidence,
        method=e.method,
        score=e.score,
        baseline=e.baseline,
        interaction=e.interaction,
    )


def explanation_from_pb(e: pb.Explanation) -> d.Explanation:
    return d.Explanation(
        evidence=[_evidence_from_pb(ev) for ev in e.evidence],
        sentence=e.sentence,
        confidence=e.confidence,
        method=e.method,
        score=e.score,
        baseline=e.baseline,
        interaction=e.interaction,
    )


def scored_to_pb(x: d.ScoredItem) -> pb.ScoredProduct:
    msg = pb.ScoredProduct(
        product=pb.ProductRef(product_id=x.product_id, title=x.title),
        score=x.score,
        model_scores=x.model_scores,
        sources=[_SOURCE[s] for s in x.sources],
        availability=_enum_to_pb(_AVAILABILITY, x.availability),
    )
    if x.explanation is not None:
        msg.explanation.CopyFrom(explanation_to_pb(x.explanation))
    if x.price is not None:
        msg.price.CopyFrom(money_to_pb(x.price))
    return msg


def scored_from_pb(x: pb.ScoredProduct) -> d.ScoredItem:
    sources = [enum_from_pb(d.Source, s) for s in x.sources]
    return d.ScoredItem(
        product_id=x.product.product_id,
        title=x.product.title,
        score=x.score,
        model_scores=dict(x.model_scores),
        sources=[s for s in sources if s is not None],
        explanation=explanation_from_pb(x.explanation) if x.HasField("explanation") else None,
        price=money_from_pb(x.price) if x.HasField("price") else None,
        availability=enum_from_pb(d.Availability, x.availability),
    )


def money_to_pb(m: d.Money) -> money_pb2.Money:
    return money_pb2.Money(currency_code=m.currency_code, units=m.units, nanos=m.nanos)


def money_from_pb(m: money_pb2.Money) -> d.Money:
    """As sent: whether it is a valid price is the catalogue's rule (libs.products.model), not conversion's."""
    return d.Money(m.currency_code, m.units, m.nanos)


def timestamp_to_pb(epoch_s: float) -> timestamp_pb2.Timestamp:
    msg = timestamp_pb2.Timestamp()
    msg.FromMicroseconds(round(epoch_s * 1e6))
    return msg


def product_from_pb(p: catpb.Product) -> ProductContent:
    """What a caller writes (output-only fields ignored); validated by libs.products.model.check_upsert."""
    return ProductContent(
        p.product_id,
        p.title,
        money_from_pb(p.price) if p.HasField("price") else None,
        enum_from_pb(d.Availability, p.availability),
        p.description,
        tuple(p.categories),
    )


def product_to_pb(p: Product) -> catpb.Product:
    c = p.content
    return catpb.Product(
        product_id=c.product_id,
        title=c.title,
        description=c.description,
        price=money_to_pb(c.price),
        availability=_enum_to_pb(_AVAILABILITY, c.availability),
        categories=c.categories,
        create_time=timestamp_to_pb(p.create_time),
        update_time=timestamp_to_pb(p.update_time),
        change_seq=p.change_seq,
    )


def user_event_to_pb(e: d.UserEvent) -> pb.UserEvent:
    msg = pb.UserEvent(product_id=e.product_id, type=_EVENT[e.kind], quantity=e.quantity)
    msg.event_time.FromNanoseconds(int(e.ts * 1e9))
    return msg


def timestamp_from_pb(ts: timestamp_pb2.Timestamp, field: str) -> float:
    """Seconds since the epoch. A Timestamp outside its documented range (years 1..9999, nanos 0..999,999,999),
    which any client can put on the wire, is INVALID_ARGUMENT naming `field`."""
    if not MIN_TIMESTAMP_S <= ts.seconds <= MAX_TIMESTAMP_S or not 0 <= ts.nanos <= 999_999_999:
        raise invalid(field, "must be a valid Timestamp (years 1..9999, nanos 0..999999999)")
    return ts.seconds + ts.nanos / 1e9


def user_event_from_pb(e: pb.UserEvent, field: str = "event") -> d.UserEvent | None:
    kind = enum_from_pb(d.EventKind, e.type)
    if kind is None:
        return None
    return d.UserEvent(e.product_id, kind, timestamp_from_pb(e.event_time, f"{field}.event_time"), max(e.quantity, 1))


def event_from_pb(e: gpb.Event, field: str, now: float) -> tuple[str, str, str, d.UserEvent | None]:
    """(event_id, user_id, attribution_token, event or None when its type is unknown) of a RecordEvents event; no
    event_time = `now` (time of receipt); quantity 0 = 1. Values are judged by the gateway core, not here."""
    kind = enum_from_pb(d.EventKind, e.type)
    ts = timestamp_from_pb(e.event_time, f"{field}.event_time") if e.HasField("event_time") else now
    event = d.UserEvent(e.product_id, kind, ts, e.quantity if e.quantity != 0 else 1) if kind else None
    return e.event_id, e.user_id, e.attribution_token, event


def events_from_pb(msgs, now: float, field: str = "events") -> list[tuple[str, str, str, d.UserEvent | None]]:
    """Every event of a RecordEvents call, or one INVALID_ARGUMENT naming every event that cannot be read."""
    out, violations = [], []
    for i, m in enumerate(msgs):
        try:
            out.append(event_from_pb(m, f"{field}[{i}]", now))
        except InvalidArgumentError as exc:
            violations += exc.violations
    if violations:
        raise InvalidArgumentError(violations)
    return out


def user_events_from_pb(msgs, field: str = "recent_events") -> list[d.UserEvent]:
    """Events of known types; events of unknown types (from a newer gateway) are skipped, not fatal."""
    return [e for e in (user_event_from_pb(m, f"{field}[{i}]") for i, m in enumerate(msgs)) if e is not None]


def candidate_to_pb(c: d.Candidate) -> rpb.Candidate:
    return rpb.Candidate(
        product=pb.ProductRef(product_id=c.product_id, title=c.title),
        retrieval_score=c.retrieval_score,
        matched_terms=c.matched_terms,
        source_ranks=[rpb.SourceRank(source=_SOURCE[s.source], rank=s.rank, score=s.score) for s in c.source_ranks],
    )


def candidate_from_pb(c: rpb.Candidate) -> d.Candidate:
    ranks = [(enum_from_pb(d.Source, s.source), s) for s in c.source_ranks]
    return d.Candidate(
        c.product.product_id,
        c.product.title,
        c.retrieval_score,
        [d.SourceRank(source, s.rank, s.score) for source, s in ranks if source is not None],
        list(c.matched_terms),
    )
