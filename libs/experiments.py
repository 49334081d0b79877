"""Experiment arms: stable assignment of users to ranking variants and, independently, to explanation arms (what an
explained response shows), and attribution tokens that carry both."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass, replace

from libs.domain import Explanation, Shelf
from libs.errors import InvalidArgumentError, invalid
from libs.scoring import arm_of

# Tokens are two unpadded base64url parts; b64decode would skip other characters, letting e.g. NUL bytes through
# to the event store (PostgreSQL text cannot hold them) under a valid signature.
TOKEN_RE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class Variants:
    """Variant names with traffic shares, e.g. parsed from "fused:0.8,gnn_only:0.1,fused+explore=0.3:0.1" (a
    variant may carry a repeat-vs-explore setting, libs.scoring.arm_of)."""

    arms: tuple[tuple[str, float], ...]

    @classmethod
    def parse(cls, spec: str) -> "Variants":
        arms = _shares(spec)
        for name, _ in arms:
            try:
                arm_of(name)
            except InvalidArgumentError as exc:
                raise ValueError(f"variant {name!r} in {spec!r}: {exc.violations[0].description}") from None
        return cls(arms)

    def assign(self, user_id: str) -> str:
        """Stable across processes and restarts: a hash of the user id, not Python's hash()."""
        return _assign(self.arms, b"variant:", user_id)


# What an explained response shows per result (SHOP_EXPLANATION_ARMS): everything measured (the strongest 8 pieces
# and the sentence), the strongest 3 pieces and the sentence, the sentence only, or no explanation at all.
PRESENTATIONS = {"full": 8, "top3": 3, "sentence": 0, "none": -1}  # name -> evidence pieces kept (-1: nothing)


@dataclass(frozen=True)
class ExplanationArms:
    """Explanation arms with traffic shares, e.g. "none:0.5,sentence:0.5"; each name one of PRESENTATIONS.

    Assigned by a hash of the user id with a salt of its own, so the explanation arm is independent of the ranking
    variant: every ranking variant holds each explanation arm in its share, and either factor can be read out alone.
    """

    arms: tuple[tuple[str, float], ...]

    @classmethod
    def parse(cls, spec: str) -> "ExplanationArms":
        arms = _shares(spec)
        for name, _ in arms:
            if name not in PRESENTATIONS:
                raise ValueError(f"explanation arm {name!r} in {spec!r}: must be one of {', '.join(PRESENTATIONS)}")
        return cls(arms)

    def assign(self, user_id: str) -> str:
        return _assign(self.arms, b"explanation:", user_id)


def shows_explanations(arm: str) -> bool:
    return PRESENTATIONS[arm] >= 0


def present(arm: str, explanation: Explanation) -> Explanation | None:
    """The explanation as explanation arm `arm` shows it (None: no explanation). Scores stay: only what is listed
    changes, as with the strongest-8 cut every explained response makes."""
    keep = PRESENTATIONS[arm]
    if keep < 0:
        return None
    return replace(explanation, evidence=explanation.evidence[:keep])


def _shares(spec: str) -> tuple[tuple[str, float], ...]:
    arms = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, share = part.partition(":")
        arms.append((name.strip(), float(share or 1)))
    total = sum(s for _, s in arms)
    if not arms or total <= 0:
        raise ValueError(f"no arms with positive share in {spec!r}")
    return tuple((n, s / total) for n, s in arms)


def _assign(arms: tuple[tuple[str, float], ...], salt: bytes, user_id: str) -> str:
    """The arm of `user_id`'s bucket (a hash of salt + id in [0, 1)); anonymous requests get the first arm."""
    if not user_id:
        return arms[0][0]
    bucket = int.from_bytes(hashlib.sha256(salt + user_id.encode()).digest()[:8], "big") / 2**64
    acc = 0.0
    for name, share in arms:
        acc += share
        if bucket < acc:
            return name
    return arms[-1][0]


class AttributionTokens:
    """Attribution tokens: `payload.signature`, HMAC-SHA256 keyed by configuration (SHOP_TOKEN_KEY), bounded.

    The signature is checked before anything in the payload is parsed, so a forged, oversized or hostile token
    (deeply nested JSON, say) is INVALID_ARGUMENT without ever reaching the JSON parser. A token verifies only
    against the key that issued it: replicas (and restarts) must share SHOP_TOKEN_KEY.
    """

    MAX_CHARS = 256
    _SIG_BYTES = 16  # 128-bit truncated HMAC: forging one is out of reach, the token stays short

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the attribution-token key must be at least 16 bytes")
        self._key = key

    @classmethod
    def ephemeral(cls) -> "AttributionTokens":
        """A key of this process only (`make run` passes one key to every restart; production sets its own)."""
        return cls(secrets.token_bytes(32))

    def _sign(self, payload: bytes) -> str:
        return _b64(hmac.new(self._key, payload, hashlib.sha256).digest()[: self._SIG_BYTES])

    def issue(self, variant: str, shelf: Shelf | None = None, explanation: str = "") -> str:
        """A token for one response of `variant`; a Recommend response also names its shelf, an explained one its
        explanation arm (make ab-report splits the funnel per shelf and per explanation arm)."""
        fields = {"r": secrets.token_hex(8), "v": variant, "t": int(time.time())}
        if shelf is not None:
            fields["s"] = shelf.value
        if explanation:
            fields["e"] = explanation
        payload = json.dumps(fields, separators=(",", ":")).encode()
        return f"{_b64(payload)}.{self._sign(payload)}"

    def variant_of(self, token: str, field: str) -> str:
        """The variant a token was issued for; "" for an empty token; INVALID_ARGUMENT unless issued with our key."""
        return str(self._verified(token, field)["v"]) if token else ""

    def response_id(self, token: str, field: str) -> str:
        """The id of the response a token was issued with (the key of what it served, libs.domain.ServedResponse);
        INVALID_ARGUMENT for an empty token or one not issued with our key."""
        if not token:
            raise invalid(field, "is required: the attribution_token of a Search or Recommend response")
        return str(self._verified(token, field)["r"])

    def _verified(self, token: str, field: str) -> dict:
        if len(token) > self.MAX_CHARS:
            raise invalid(field, f"must be at most {self.MAX_CHARS} characters (got {len(token)})")
        if not TOKEN_RE.fullmatch(token):
            raise invalid(field, "is not an attribution_token issued by this service")
        body, _, signature = token.partition(".")
        try:
            payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except ValueError:
            payload = b""
        if not payload or not hmac.compare_digest(signature.encode(), self._sign(payload).encode()):
            raise invalid(field, "is not an attribution_token issued by this service")
        return json.loads(payload)


def shelf_of_stored(token: str) -> str:
    """The shelf a stored token names ("" for Search responses and tokens issued before shelves)."""
    return _stored_field(token, "s")


def explanation_arm_of_stored(token: str) -> str:
    """The explanation arm a stored token names ("" for responses without explanations asked for, and tokens issued
    before explanation arms)."""
    return _stored_field(token, "e")


def _stored_field(token: str, key: str) -> str:
    """Reads the payload without the key: the gateway verified every token before storing it."""
    body = token.partition(".")[0]
    try:
        fields = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except ValueError:
        return ""
    return str(fields.get(key, "")) if isinstance(fields, dict) else ""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")
