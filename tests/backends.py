"""Both backends of a store under the same tests: SQLite in tmp_path, PostgreSQL in a fresh database (pg_dsn)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

S = TypeVar("S")


def opener(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite: Callable[[Path], S], postgres: Callable[[str], S]
) -> Iterator[Callable[[], S]]:
    """Fixture body (params ["sqlite", "postgres"]): a function that opens a new store instance on one shared
    database per call (each call is another process/replica); all are closed afterwards."""
    if request.param == "sqlite":

        def open_one() -> S:
            return sqlite(tmp_path / "e.sqlite3")
    else:
        dsn = request.getfixturevalue("pg_dsn")

        def open_one() -> S:
            return postgres(dsn)

    opened: list[S] = []

    def tracked() -> S:
        opened.append(open_one())
        return opened[-1]

    yield tracked
    for s in opened:
        s.close()
