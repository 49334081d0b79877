"""Domain types shared by the services' core logic (no protobuf here; see libs/convert.py)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Source(enum.Enum):
    """Why a product became a candidate (mirrors shop.common.v1.CandidateSource)."""

    LEXICAL = "LEXICAL"
    DENSE = "DENSE"
    REPEAT_PURCHASE = "REPEAT_PURCHASE"
    GRAPH_NEIGHBOUR = "GRAPH_NEIGHBOUR"
    CO_PURCHASE = "CO_PURCHASE"
    POPULARITY = "POPULARITY"
    SIMILAR_CUSTOMERS = "SIMILAR_CUSTOMERS"


class Shelf(enum.Enum):
    """Which shelf a Recommend call fills (mirrors shop.common.v1.Shelf)."""

    FOR_YOU = "FOR_YOU"
    BUY_AGAIN = "BUY_AGAIN"
    DISCOVER = "DISCOVER"
    FREQUENTLY_BOUGHT_TOGETHER = "FREQUENTLY_BOUGHT_TOGETHER"
    SIMILAR_ITEMS = "SIMILAR_ITEMS"


class EvidenceKind(enum.Enum):
    """Mirrors shop.common.v1.EvidenceType."""

    PAST_PURCHASE = "PAST_PURCHASE"
    QUERY_TERM = "QUERY_TERM"
    CO_PURCHASE_NEIGHBOUR = "CO_PURCHASE_NEIGHBOUR"
    POPULARITY = "POPULARITY"
    REPEAT_PURCHASE = "REPEAT_PURCHASE"
    RECENT_EVENT = "RECENT_EVENT"
    QUERY_MATCH = "QUERY_MATCH"
    QUERY_SIMILAR = "QUERY_SIMILAR"
    DISCOVERY = "DISCOVERY"
    PURCHASE_FREQUENCY = "PURCHASE_FREQUENCY"
    SIMILAR_CUSTOMERS = "SIMILAR_CUSTOMERS"
    BOUGHT_TOGETHER = "BOUGHT_TOGETHER"
    SHARES_WITH = "SHARES_WITH"


class Stage(enum.Enum):
    """Pipeline stages (mirrors shop.common.v1.Stage); models are named by Degradation.model, not here."""

    RETRIEVAL = "RETRIEVAL"
    RANKING = "RANKING"
    EXPLANATION = "EXPLANATION"
    TEXT_ENCODER = "TEXT_ENCODER"
    CATALOG = "CATALOG"


@dataclass(frozen=True)
class Degradation:
    stage: Stage | None  # None: a stage this build does not know (reported by a newer peer)
    reason: str
    model: str = ""  # the model that failed, if the stage degraded because of one model


@dataclass(frozen=True)
class SourceRank:
    source: Source
    rank: int
    score: float


@dataclass
class Candidate:
    product_id: str
    title: str
    retrieval_score: float
    source_ranks: list[SourceRank] = field(default_factory=list)
    matched_terms: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Evidence:
    kind: EvidenceKind | None  # None: a kind this build does not know (reported by a newer peer)
    contribution: float
    product_id: str = ""
    title: str = ""
    text: str = ""
    # The fact the piece measured (common.proto Evidence says what per kind): a count over the last `window_days`
    # days (0 = all the history) and the user's last order of the product counted, in seconds (0 = none).
    count: int = 0
    window_days: int = 0
    last_time: float = 0.0
    interval_days: int = 0  # the user's own repurchase interval of the product counted (0 = not measurable)


@dataclass
class Explanation:
    evidence: list[Evidence]
    sentence: str
    confidence: float
    method: str = "counterfactual-masking"
    score: float = 0.0  # the fused score explained: the one that ranked the result
    baseline: float = 0.0  # fused score with every listed piece of evidence masked
    interaction: float = 0.0  # score - baseline - sum of all measured contributions (pieces are not additive)


class Availability(enum.Enum):
    """Mirrors shop.common.v1.Availability."""

    IN_STOCK = "IN_STOCK"
    OUT_OF_STOCK = "OUT_OF_STOCK"
    DISCONTINUED = "DISCONTINUED"


@dataclass(frozen=True)
class Money:
    """google.type.Money: exact integers, never a float, so a stored price reads back as sent."""

    currency_code: str
    units: int
    nanos: int = 0

    @classmethod
    def from_decimal(cls, amount: float, currency_code: str = "GBP") -> Money:
        """Rounded to whole nanos (the prepared dataset's prices, in GBP, have two decimals: nothing is lost)."""
        total = round(amount * 1e9)
        return cls(currency_code, total // 1_000_000_000, total % 1_000_000_000)

    def as_decimal(self) -> float:
        return self.units + self.nanos / 1e9


@dataclass
class ScoredItem:
    product_id: str
    title: str
    score: float
    model_scores: dict[str, float] = field(default_factory=dict)
    sources: list[Source] = field(default_factory=list)
    explanation: Explanation | None = None
    price: Money | None = None  # from the catalogue; None when it has no row for the product
    availability: Availability | None = None


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: str


class EventKind(enum.Enum):
    """Mirrors shop.common.v1.EventType."""

    IMPRESSION = "IMPRESSION"
    CLICK = "CLICK"
    ADD_TO_CART = "ADD_TO_CART"
    PURCHASE = "PURCHASE"


@dataclass(frozen=True)
class UserEvent:
    """A behaviour event; `ts` is seconds since the epoch (UTC)."""

    product_id: str
    kind: EventKind
    ts: float
    quantity: int = 1


@dataclass(frozen=True)
class RecordedEvent:
    """An event as accepted by RecordEvents."""

    event_id: str
    user_id: str
    event: UserEvent
    attribution_token: str = ""
    variant: str = ""


@dataclass(frozen=True)
class ServedResponse:
    """What one Search or Recommend response served, kept so its results can be explained on demand with exactly
    the scores it served: the same user, query, variant, bundle and recorded events."""

    response_id: str  # the attribution token's id
    created: float  # seconds since the epoch (UTC)
    user_id: str
    query: str
    variant: str
    bundle_id: str
    results: tuple[tuple[str, str, float], ...]  # (product_id, title, served score), in ranked order
    recent: tuple[UserEvent, ...]  # the user's recorded events the response read
    shelf: str = ""  # the Recommend shelf (Shelf value), "" for Search
    context: tuple[str, ...] = ()  # the shelf's context product ids
