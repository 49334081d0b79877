"""The event store interface, shared by its backends, and the rules every stored event satisfies."""

from __future__ import annotations

import abc
import json
import struct
from collections.abc import Sequence

from libs.domain import EventKind, ModelVersion, RecordedEvent, ServedResponse, Source, UserEvent

# Event times a store accepts: from the epoch to a day past the receiver's clock (client clock skew). Anything
# in that range converts back to a protobuf Timestamp, so nothing accepted can later fail to read back, and
# no event can sit "in the future" of a user's history for longer than a day.
MIN_EVENT_TS = 0.0
MAX_FUTURE_S = 86_400.0

DEFAULT_KINDS = (EventKind.PURCHASE, EventKind.ADD_TO_CART)
Purchase = tuple[str, str, float, int, str]  # (user_id, product_id, ts, quantity, variant)
Attributed = tuple[str, str, str, str]  # (attribution_token, variant, kind, product_id)
# (event_id, product_id, user_id, ts, other event_id, other product_id): a purchase of product_id paired with one
# other purchase of its basket (the same user's purchases at the same event time); ("", "") when it has none.
BasketRow = tuple[str, str, str, float, str, str]


def event_time_problem(ts: float, now: float) -> str | None:
    """Why `ts` cannot be stored, or None when it can."""
    if not MIN_EVENT_TS <= ts <= now + MAX_FUTURE_S:
        return "must be between 1970-01-01T00:00:00Z and one day after the server's clock"
    return None


def payload(e: RecordedEvent) -> tuple:
    """What must match for a re-sent event_id to count as a duplicate rather than a conflict.

    The time is left out on purpose: a client that omits event_time gets the server's clock, so its retries
    carry a new time; the first stored time wins.
    """
    return e.user_id, e.event.product_id, e.event.kind.value, e.event.quantity, e.attribution_token


class EventConflictError(Exception):
    """Event ids already stored with a different payload; nothing of the batch was stored."""

    def __init__(self, event_ids: Sequence[str]) -> None:
        self.event_ids = list(event_ids)
        super().__init__(f"{len(self.event_ids)} event_id(s) already stored with a different payload")


class EventStore(abc.ABC):
    """Thread-safe, blocking: call from asyncio via `asyncio.to_thread`.

    Database trouble (unreachable, locked, full, read-only) raises `libs.errors.UnavailableError`.
    """

    @abc.abstractmethod
    def append(self, events: Sequence[RecordedEvent]) -> tuple[int, int]:
        """Store all events in one durable transaction; returns (accepted, duplicates).

        A duplicate is an event_id already stored with the same payload. One stored with a different payload
        raises EventConflictError and stores nothing.
        """

    @abc.abstractmethod
    def recent(self, user_id: str, limit: int = 200, kinds: Sequence[EventKind] = DEFAULT_KINDS) -> list[UserEvent]:
        """The user's newest events of the given kinds, oldest first."""

    @abc.abstractmethod
    def read_purchases(self) -> list[Purchase]:
        """All purchases as (user_id, product_id, ts, quantity, variant), oldest first."""

    @abc.abstractmethod
    def baskets_of(self, product_ids: Sequence[str], after: float = -1.0) -> tuple[list[BasketRow], float]:
        """The purchases of `product_ids`, each once per other purchase of its basket (once alone when none), where
        either was recorded after position `after` of the store's recording order (-1: all), and the position to
        pass next time. A caller drops the pairs (event ids) it has seen: a backend may return some twice."""

    @abc.abstractmethod
    def read_attributed(self) -> list[Attributed]:
        """Every event that carries an attribution token, as (token, variant, kind, product_id), oldest first."""

    @abc.abstractmethod
    def prune(self, older_than: float) -> int:
        """Delete events whose event time is before `older_than` (epoch seconds); returns how many."""

    @abc.abstractmethod
    def keep_response(self, response: ServedResponse) -> None:
        """Store what a response served (a re-sent id keeps the first). Not fsync'd at commit: a record lost in a
        crash only makes that response's on-demand explanation FAILED_PRECONDITION, and Search pays no flush."""

    @abc.abstractmethod
    def served_response(self, response_id: str) -> ServedResponse | None:
        """The kept response, or None."""

    @abc.abstractmethod
    def prune_responses(self, older_than: float) -> int:
        """Delete kept responses created before `older_than` (epoch seconds); returns how many."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections; the store is unusable afterwards."""


def conflicts(sent: Sequence[RecordedEvent], stored: dict[str, tuple]) -> list[str]:
    """Ids of `sent` events whose stored payload (by id) differs from the sent one."""
    return [e.event_id for e in sent if e.event_id in stored and stored[e.event_id] != payload(e)]


def response_body(r: ServedResponse) -> str:
    """The stored form of a kept response (its id and time are columns of their own)."""
    return json.dumps(
        {
            "u": r.user_id,
            "q": r.query,
            "v": r.variant,
            "b": r.bundle_id,
            "r": [list(x) for x in r.results],
            "e": [[e.product_id, e.kind.value, e.ts, e.quantity] for e in r.recent],
            "s": r.shelf,
            "c": list(r.context),
            "p": r.page_size,
            "d": _details_body(r.details),
            "m": [[v.name, v.version] for v in r.versions],
        },
        separators=(",", ":"),
        ensure_ascii=False,
    )


def response_from_body(response_id: str, created: float, body: str) -> ServedResponse:
    x = json.loads(body)
    return ServedResponse(
        response_id,
        created,
        x["u"],
        x["q"],
        x["v"],
        x["b"],
        tuple((str(p), str(t), float(s)) for p, t, s in x["r"]),
        tuple(UserEvent(p, EventKind(k), float(ts), int(q)) for p, k, ts, q in x["e"]),
        str(x.get("s", "")),  # bodies kept before shelves have neither
        tuple(str(p) for p in x.get("c", ())),
        # Responses kept before pages existed have none of these.
        int(x.get("p", 0)),
        _details_from_body(x.get("d")),
        tuple(ModelVersion(n, v) for n, v in x.get("m", ())),
    )


def _details_body(details: Sequence[tuple[dict[str, float], tuple[Source, ...]]]) -> dict:
    """Model scores and sources of a kept ranked list (up to 200 results), compact: the score names once, each score
    to float32's precision (9 significant digits: model_scores travel as float32, so a later page serves the same
    values), the sources by name."""
    names = sorted({k for scores, _ in details for k in scores})
    return {
        "k": names,
        "v": [[_float32(scores[k]) if k in scores else None for k in names] for scores, _ in details],
        "s": [[s.value for s in sources] for _, sources in details],
    }


def _float32(value: float) -> float:
    """The float32 the wire carries, in 9 significant digits: exactly that float32 again when read back."""
    return float(f"{struct.unpack('f', struct.pack('f', value))[0]:.9g}")


def _details_from_body(body: dict | None) -> tuple[tuple[dict[str, float], tuple[Source, ...]], ...]:
    if not body:  # kept before pages existed
        return ()
    return tuple(
        ({k: float(v) for k, v in zip(body["k"], values) if v is not None}, tuple(Source(s) for s in sources))
        for values, sources in zip(body["v"], body["s"])
    )
