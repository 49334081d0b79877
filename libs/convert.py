"""Domain <-> protobuf conversion, in one place for every servicer.

Enum values read from the wire follow one policy, `enum_from_pb`: UNSPECIFIED, and any value this build does
not know (a peer built from newer protos may send one), read as None ("unspecified"), never as an error here:
- a REQUIRED field of a public request must not be unspecified: the core rejects it with INVALID_ARGUMENT naming
  the field (RecordEvents' `events[i].type`);
- anywhere else the rest of the message is kept where it means something without the value (a Degradation
  keeps its reason and model, an Evidence its product and contribution; None goes back out as UNSPECIFIED) and
  dropped where it does not (a candidate source, a source rank, a recent event of unknown type).
"""
from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import TypeVar

from shop.common.v1 import common_pb2 as pb
from shop.retrieval.v1 import retrieval_service_pb2 as rpb

from libs import domain as d
from libs.errors import invalid

E = TypeVar("E", bound=enum.Enum)


def _enum_map(domain_cls: type[E], proto_enum, prefix: str) -> dict[E, int]:
    return {m: proto_enum.Value(f"{prefix}_{m.value}") for m in domain_cls}


_SOURCE = _enum_map(d.Source, pb.CandidateSource, "CANDIDATE_SOURCE")
_EVIDENCE = _enum_map(d.EvidenceKind, pb.EvidenceType, "EVIDENCE_TYPE")
_STAGE = _enum_map(d.Stage, pb.Stage, "STAGE")
_EVENT = _enum_map(d.EventKind, pb.EventType, "EVENT_TYPE")
_BACK = {cls: {v: k for k, v in mapping.items()} for cls, mapping in
         ((d.Source, _SOURCE), (d.EvidenceKind, _EVIDENCE), (d.Stage, _STAGE), (d.EventKind, _EVENT))}


def enum_from_pb(domain_cls: type[E], value: int) -> E | None:
    """The domain member for a wire value; None for UNSPECIFIED and unknown values (see the module docstring)."""
    return _BACK[domain_cls].get(value)


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
    return pb.Evidence(type=_enum_to_pb(_EVIDENCE, ev.kind), product=product, text=ev.text,
                       contribution=ev.contribution)


def explanation_to_pb(e: d.Explanation) -> pb.Explanation:
    return pb.Explanation(
        evidence=[_evidence_to_pb(ev) for ev in e.evidence],
        sentence=e.sentence, confidence=e.confidence, method=e.method, score=e.score, baseline=e.baseline,
        interaction=e.interaction)


def explanation_from_pb(e: pb.Explanation) -> d.Explanation:
    return d.Explanation(
        evidence=[d.Evidence(kind=enum_from_pb(d.EvidenceKind, ev.type), contribution=ev.contribution,
                             product_id=ev.product.product_id, title=ev.product.title, text=ev.text)
                  for ev in e.evidence],
        sentence=e.sentence, confidence=e.confidence, method=e.method, score=e.score, baseline=e.baseline,
        interaction=e.interaction)


def scored_to_pb(x: d.ScoredItem) -> pb.ScoredProduct:
    msg = pb.ScoredProduct(product=pb.ProductRef(product_id=x.product_id, title=x.title), score=x.score,
                           model_scores=x.model_scores, sources=[_SOURCE[s] for s in x.sources])
    if x.explanation is not None:
        msg.explanation.CopyFrom(explanation_to_pb(x.explanation))
    return msg


def scored_from_pb(x: pb.ScoredProduct) -> d.ScoredItem:
    sources = [enum_from_pb(d.Source, s) for s in x.sources]
    return d.ScoredItem(product_id=x.product.product_id, title=x.product.title, score=x.score,
                        model_scores=dict(x.model_scores), sources=[s for s in sources if s is not None],
                        explanation=explanation_from_pb(x.explanation) if x.HasField("explanation") else None)


def user_event_to_pb(e: d.UserEvent) -> pb.UserEvent:
    msg = pb.UserEvent(product_id=e.product_id, type=_EVENT[e.kind], quantity=e.quantity)
    msg.event_time.FromNanoseconds(int(e.ts * 1e9))
    return msg


def user_event_from_pb(e: pb.UserEvent, field: str = "event") -> d.UserEvent | None:
    kind = enum_from_pb(d.EventKind, e.type)
    if kind is None:
        return None
    try:
        ts = e.event_time.ToNanoseconds() / 1e9
    except ValueError as exc:  # outside Timestamp's range (years 1..9999) or nanos outside 0..999,999,999
        raise invalid(f"{field}.event_time", "must be a valid Timestamp (years 1..9999, nanos 0..999999999)") from exc
    return d.UserEvent(e.product_id, kind, ts, max(e.quantity, 1))


def user_events_from_pb(msgs, field: str = "recent_events") -> list[d.UserEvent]:
    """Events of known types; events of unknown types (from a newer gateway) are skipped, not fatal."""
    return [e for e in (user_event_from_pb(m, f"{field}[{i}]") for i, m in enumerate(msgs)) if e is not None]


def candidate_to_pb(c: d.Candidate) -> rpb.Candidate:
    return rpb.Candidate(product=pb.ProductRef(product_id=c.product_id, title=c.title),
                         retrieval_score=c.retrieval_score, matched_terms=c.matched_terms,
                         source_ranks=[rpb.SourceRank(source=_SOURCE[s.source], rank=s.rank, score=s.score)
                                       for s in c.source_ranks])


def candidate_from_pb(c: rpb.Candidate) -> d.Candidate:
    ranks = [(enum_from_pb(d.Source, s.source), s) for s in c.source_ranks]
    return d.Candidate(c.product.product_id, c.product.title, c.retrieval_score,
                       [d.SourceRank(source, s.rank, s.score) for source, s in ranks if source is not None],
                       list(c.matched_terms))
