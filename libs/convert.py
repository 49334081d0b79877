"""Domain <-> protobuf conversion, in one place for every servicer."""
from __future__ import annotations

from shop.common.v1 import common_pb2 as pb
from shop.retrieval.v1 import retrieval_service_pb2 as rpb

from libs import domain as d

_SOURCE = {s: pb.CandidateSource.Value(f"CANDIDATE_SOURCE_{s.value}") for s in d.Source}
_SOURCE_BACK = {v: k for k, v in _SOURCE.items()}
_EVIDENCE = {e: pb.EvidenceType.Value(f"EVIDENCE_TYPE_{e.value}") for e in d.EvidenceKind}
_EVIDENCE_BACK = {v: k for k, v in _EVIDENCE.items()}
_STAGE = {s: pb.Stage.Value(f"STAGE_{s.value}") for s in d.Stage}
_STAGE_BACK = {v: k for k, v in _STAGE.items()}


def source_to_pb(s: d.Source) -> int:
    return _SOURCE[s]


def source_from_pb(v: int) -> d.Source:
    return _SOURCE_BACK[v]


def degradation_to_pb(x: d.Degradation) -> pb.Degradation:
    return pb.Degradation(stage=_STAGE[x.stage], reason=x.reason)


def degradation_from_pb(x: pb.Degradation) -> d.Degradation:
    return d.Degradation(_STAGE_BACK.get(x.stage, d.Stage.RETRIEVAL), x.reason)


def version_to_pb(v: d.ModelVersion) -> pb.ModelVersion:
    return pb.ModelVersion(name=v.name, version=v.version)


def version_from_pb(v: pb.ModelVersion) -> d.ModelVersion:
    return d.ModelVersion(v.name, v.version)


def explanation_to_pb(e: d.Explanation) -> pb.Explanation:
    return pb.Explanation(
        evidence=[pb.Evidence(type=_EVIDENCE[ev.kind], product=pb.ProductRef(product_id=ev.product_id, title=ev.title)
                              if ev.product_id else None, text=ev.text, contribution=ev.contribution)
                  for ev in e.evidence],
        sentence=e.sentence, confidence=e.confidence, method=e.method)


def explanation_from_pb(e: pb.Explanation) -> d.Explanation:
    return d.Explanation(
        evidence=[d.Evidence(kind=_EVIDENCE_BACK[ev.type], contribution=ev.contribution,
                             product_id=ev.product.product_id, title=ev.product.title, text=ev.text)
                  for ev in e.evidence],
        sentence=e.sentence, confidence=e.confidence, method=e.method)


def scored_to_pb(x: d.ScoredItem) -> pb.ScoredProduct:
    msg = pb.ScoredProduct(product=pb.ProductRef(product_id=x.product_id, title=x.title), score=x.score,
                           model_scores=x.model_scores, sources=[_SOURCE[s] for s in x.sources])
    if x.explanation is not None:
        msg.explanation.CopyFrom(explanation_to_pb(x.explanation))
    return msg


def scored_from_pb(x: pb.ScoredProduct) -> d.ScoredItem:
    return d.ScoredItem(product_id=x.product.product_id, title=x.product.title, score=x.score,
                        model_scores=dict(x.model_scores), sources=[_SOURCE_BACK[s] for s in x.sources
                                                                     if s in _SOURCE_BACK],
                        explanation=explanation_from_pb(x.explanation) if x.HasField("explanation") else None)


_EVENT = {k: pb.EventType.Value(f"EVENT_TYPE_{k.value}") for k in d.EventKind}
_EVENT_BACK = {v: k for k, v in _EVENT.items()}


def event_kind_from_pb(v: int) -> d.EventKind | None:
    """None for UNSPECIFIED or values this build does not know."""
    return _EVENT_BACK.get(v)


def user_event_to_pb(e: d.UserEvent) -> pb.UserEvent:
    msg = pb.UserEvent(product_id=e.product_id, type=_EVENT[e.kind], quantity=e.quantity)
    msg.event_time.FromNanoseconds(int(e.ts * 1e9))
    return msg


def user_event_from_pb(e: pb.UserEvent) -> d.UserEvent | None:
    kind = _EVENT_BACK.get(e.type)
    if kind is None:
        return None
    return d.UserEvent(e.product_id, kind, e.event_time.ToNanoseconds() / 1e9, max(e.quantity, 1))


def user_events_from_pb(msgs) -> list[d.UserEvent]:  # noqa: ANN001 - repeated shop.common.v1.UserEvent
    """Events of known types; unknown types (from newer clients) are skipped, not fatal."""
    return [e for e in (user_event_from_pb(m) for m in msgs) if e is not None]


def candidate_to_pb(c: d.Candidate) -> rpb.Candidate:
    return rpb.Candidate(product=pb.ProductRef(product_id=c.product_id, title=c.title),
                         retrieval_score=c.retrieval_score, matched_terms=c.matched_terms,
                         source_ranks=[rpb.SourceRank(source=_SOURCE[s.source], rank=s.rank, score=s.score)
                                       for s in c.source_ranks])


def candidate_from_pb(c: rpb.Candidate) -> d.Candidate:
    return d.Candidate(c.product.product_id, c.product.title, c.retrieval_score,
                       [d.SourceRank(_SOURCE_BACK[s.source], s.rank, s.score) for s in c.source_ranks
                        if s.source in _SOURCE_BACK], list(c.matched_terms))
