"""Fixtures shared by unit and integration tests."""

from collections.abc import Iterator

import pytest

from tests import postgres


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    yield from postgres.server()


@pytest.fixture
def pg_dsn(pg_server: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test (skips with the reason when there is no server)."""
    yield from postgres.fresh_database(pg_server)
