"""Experiment arms: stable assignment of users to ranking variants, and attribution tokens."""
from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import time
from dataclasses import dataclass

from libs.errors import invalid

MAX_TOKEN_CHARS = 256  # ours are ~60; the bound keeps a stored event small whatever a client sends
# Tokens are unpadded base64url (what new_attribution_token writes); b64decode would skip other characters,
# letting NUL bytes through to the event store (PostgreSQL text cannot hold them).
TOKEN_RE = re.compile(r"[A-Za-z0-9_-]+")
VARIANT_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


@dataclass(frozen=True)
class Variants:
    """Variant names with traffic shares, e.g. parsed from "fused:0.8,gnn_only:0.2"."""

    arms: tuple[tuple[str, float], ...]

    @classmethod
    def parse(cls, spec: str) -> "Variants":
        arms = []
        for part in filter(None, (p.strip() for p in spec.split(","))):
            name, _, share = part.partition(":")
            arms.append((name.strip(), float(share or 1)))
        total = sum(s for _, s in arms)
        if not arms or total <= 0:
            raise ValueError(f"no variants with positive share in {spec!r}")
        return cls(tuple((n, s / total) for n, s in arms))

    def assign(self, user_id: str) -> str:
        """Stable across processes and restarts: a hash of the user id, not Python's hash()."""
        if not user_id:
            return self.arms[0][0]
        bucket = int.from_bytes(hashlib.sha256(b"variant:" + user_id.encode()).digest()[:8], "big") / 2**64
        acc = 0.0
        for name, share in self.arms:
            acc += share
            if bucket < acc:
                return name
        return self.arms[-1][0]


def new_attribution_token(variant: str) -> str:
    payload = {"r": secrets.token_hex(8), "v": variant, "t": int(time.time())}
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")


def variant_of_token(token: str, field: str) -> str:
    """The variant a token was issued for; "" for an empty token; INVALID_ARGUMENT if malformed."""
    if not token:
        return ""
    if len(token) > MAX_TOKEN_CHARS:
        raise invalid(field, f"must be at most {MAX_TOKEN_CHARS} characters")
    not_ours = invalid(field, "is not an attribution_token issued by this service")
    if not TOKEN_RE.fullmatch(token):
        raise not_ours
    try:
        variant = str(json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))["v"])
    except (ValueError, KeyError, TypeError) as exc:
        raise not_ours from exc
    if not VARIANT_RE.fullmatch(variant):
        raise not_ours
    return variant
