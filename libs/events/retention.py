"""Retention: events older than the configured number of days are deleted, at start-up and then daily."""
from __future__ import annotations

import asyncio
import logging
import time

from libs.errors import UnavailableError
from libs.events.base import EventStore

log = logging.getLogger(__name__)

DAY_S = 86_400.0


async def prune_periodically(store: EventStore, retention_days: float, every_s: float = DAY_S) -> None:
    """Run until cancelled; retention_days <= 0 keeps everything. Replicas may all run it: a DELETE by time
    is idempotent. A database in trouble skips one round (logged), it does not stop the loop."""
    if retention_days <= 0:
        return
    while True:
        cutoff = time.time() - retention_days * DAY_S
        try:
            deleted = await asyncio.to_thread(store.prune, cutoff)
            log.info("event retention: deleted %d events older than %.0f days", deleted, retention_days)
        except UnavailableError as exc:
            log.warning("event retention skipped: %s", exc)
        await asyncio.sleep(every_s)
