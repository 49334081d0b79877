"""Structured (JSON-lines) logging that never carries raw customer ids or query text."""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import sys
import time

from libs import tracing

# Key of the pseudonyms: SHOP_LOG_KEY (a Secret in production, so pseudonyms join across pods and restarts but
# nobody without the key can test a guessed customer id against the logs). Unset: random per process.
_key = secrets.token_bytes(32)


def redact_id(value: str) -> str:
    """Stable, non-reversible short hash of a customer id: lets logs be joined without exposing it."""
    if not value:
        return ""
    return "u_" + hashlib.blake2b(value.encode(), key=_key, digest_size=6).hexdigest()


def redact_text(value: str, keep: int = 0) -> str:
    """Query text is personal data: log only its length and a hash (optionally a short prefix)."""
    if not value:
        return ""
    digest = hashlib.blake2b(value.encode(), key=_key, digest_size=6).hexdigest()
    prefix = value[:keep] + "…" if keep else ""
    return f"{prefix}len={len(value)}#{digest}"


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str = "") -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "service": self.service,
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        trace_id = tracing.current_trace_id()
        if trace_id:  # joins a log line to its trace (tracing on)
            payload["trace_id"] = trace_id
        payload.update(getattr(record, "fields", {}))
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


def set_key(key: bytes) -> None:
    """Pseudonymise with `key` from now on (blake2b keys are at most 64 bytes: longer keys are hashed down)."""
    global _key  # noqa: PLW0603 - one key per process, set once at start-up
    _key = key if len(key) <= 64 else hashlib.sha512(key).digest()


def configure(level: str = "INFO", service: str = "", key: bytes | None = None) -> None:
    if key:
        set_key(key)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def fields(**kv: object) -> dict:
    """`log.info("msg", extra=fields(user=redact_id(uid)))` attaches structured fields."""
    return {"fields": kv}
