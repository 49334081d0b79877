"""Versioned schema migrations: one folder of `NNNN_name.sql` files per store and backend, applied in order.

Each store records its applied versions in its own table and applies the pending ones in one transaction under a
lock (PostgreSQL advisory lock, SQLite `BEGIN IMMEDIATE`), so replicas starting together apply each version once.
Files are never edited once released: a change is a new file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


@dataclass(frozen=True)
class Schema:
    """A store's migrations: `root/<backend>/NNNN_name.sql`, recorded in `table`."""

    root: Path
    table: str
    what: str  # for logs and errors, e.g. "event store"

    def load(self, backend: str) -> list[Migration]:
        return load_folder(self.root / backend)


def load_folder(folder: Path) -> list[Migration]:
    """The folder's migrations in version order; versions must run 1, 2, 3... without gaps."""
    found = []
    for path in sorted(folder.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise ValueError(f"{path}: migration files are named NNNN_name.sql")
        found.append(Migration(int(match[1]), match[2], path.read_text()))
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise ValueError(f"{folder}: versions must be 1..{len(found)} without gaps or repeats, got {versions}")
    return found


def pending(migrations: list[Migration], applied: set[int]) -> list[Migration]:
    return [m for m in migrations if m.version not in applied]
