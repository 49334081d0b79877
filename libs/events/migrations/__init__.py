"""The event store's migrations (see libs.database.migrations): `sqlite/` and `postgres/` here."""

from __future__ import annotations

from pathlib import Path

from libs.database.migrations import Migration, Schema, load_folder, pending

__all__ = ["SCHEMA", "TABLE", "Migration", "load", "pending"]

HERE = Path(__file__).resolve().parent
TABLE = "event_schema_migrations"
SCHEMA = Schema(HERE, TABLE, "event store")


def load(backend: str, folder: Path | None = None) -> list[Migration]:
    """The backend's migrations in version order (`folder` overrides where they are read from)."""
    return load_folder(folder) if folder else SCHEMA.load(backend)
