"""Retention: events older than the configured number of days are deleted, at start-up and then daily; responses
kept for on-demand explanations are deleted once older than their time to live."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from libs.errors import UnavailableError
from libs.events.base import EventStore

log = logging.getLogger(__name__)

DAY_S = 86_400.0


async def prune_periodically(store: EventStore, retention_days: float, every_s: float = DAY_S) -> None:
    """Run until cancelled; retention_days <= 0 keeps everything. Replicas may all run it: a DELETE by time
    is idempotent. A database in trouble skips one round (logged), it does not stop the loop."""
    if retention_days <= 0:
        return
    await _every(store.prune, retention_days * DAY_S, every_s, "events")


async def expire_responses(store: EventStore, ttl_s: float) -> None:
    """Run until cancelled: delete kept responses older than `ttl_s`, four times per time to live (at most every
    minute), so the table holds about 1.25 x ttl_s of responses."""
    await _every(store.prune_responses, ttl_s, max(ttl_s / 4, 60.0), "kept responses")


async def _every(prune: Callable[[float], int], age_s: float, every_s: float, what: str) -> None:
    while True:
        try:
            deleted = await asyncio.to_thread(prune, time.time() - age_s)
            log.info("retention: deleted %d %s older than %.0f s", deleted, what, age_s)
        except UnavailableError as exc:
            log.warning("retention of %s skipped: %s", what, exc)
        await asyncio.sleep(every_s)
