"""The product store's migrations (see libs.database.migrations): `sqlite/` and `postgres/` here."""

from __future__ import annotations

from pathlib import Path

from libs.database.migrations import Schema

SCHEMA = Schema(Path(__file__).resolve().parent, "product_schema_migrations", "product store")
