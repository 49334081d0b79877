"""The durable stores' shared plumbing: SQLite and PostgreSQL connections, transactions and versioned migrations.

Each store (libs.events, libs.products) keeps its own tables and migration history; database trouble surfaces as
`libs.errors.UnavailableError` (UNAVAILABLE + RetryInfo) from both backends.
"""

# The UNAVAILABLE hint callers get when a database is down, locked or full.
RETRY_AFTER_S = 1.0
