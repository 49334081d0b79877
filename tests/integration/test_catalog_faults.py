"""Catalogue faults end to end (loadtest/catalog_faults.py, the catalogue phases of `make chaos`): the real stack with
its catalogue in a fresh database of the real PostgreSQL, and a catalogue write token.

- The database refuses connections: reads answer from the last read copy, flagged STAGE_CATALOG; writes are
  UNAVAILABLE with RetryInfo and store nothing; once it is back, writes work and the replicas catch up.
- kill -9 of the gateway right after acknowledged UpsertProducts: none of them lost, on PostgreSQL and on SQLite.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import psycopg
import pytest

from libs.stack import Stack
from loadtest import catalog_faults
from tests import postgres
from tests.integration.conftest import _running_stack


@pytest.fixture(scope="module")
def pg_stack(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, str]]:
    """(stack, its catalogue database's name)."""
    for dsn in postgres.fresh_database(pg_server):
        env = {"SHOP_CATALOG_DSN": dsn, "SHOP_CATALOG_WRITE_TOKEN": "faults-write-token"}
        for stack in _running_stack(tmp_path_factory, env):
            yield stack, psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]


def _assert_on_target(figures) -> None:
    missed = [f.line() for f in figures if not f.ok]
    assert not missed, "\n".join(missed)


def test_catalogue_database_down_reads_flagged_writes_unavailable_then_recovers(pg_stack, pg_server):
    stack, database = pg_stack
    figures, details = asyncio.run(catalog_faults.catalog_down(stack, pg_server, database, outage_s=6.0))
    _assert_on_target(figures)
    assert details["flagged"] > 0 and all(code == "UNAVAILABLE" and retry for code, retry, _ in details["writes"])


def test_acknowledged_writes_survive_kill9_of_the_gateway_on_postgresql(pg_stack):
    stack, _ = pg_stack
    figures, details = asyncio.run(catalog_faults.write_kill(stack, "PostgreSQL", kills=3, per_kill=20))
    _assert_on_target(figures)
    assert details["acked"] >= 60 and details["lost"] == [] and details["changed"] == []


def test_acknowledged_writes_survive_kill9_of_the_gateway_on_sqlite(pg_stack):
    stack, _ = pg_stack
    dsn = stack.env.pop("SHOP_CATALOG_DSN")  # the gateway alone on the SQLite events file: its store is under test
    try:
        catalog_faults.restart_gateway(stack)
        figures, details = asyncio.run(catalog_faults.write_kill(stack, "SQLite", kills=3, per_kill=20))
    finally:
        stack.env["SHOP_CATALOG_DSN"] = dsn
        catalog_faults.restart_gateway(stack)
    _assert_on_target(figures)
    assert details["acked"] >= 60 and details["lost"] == [] and details["changed"] == []
