"""The one error type of data preparation: bad input, named by file and line.

Raised instead of letting pandas fail deep inside a parser, so that whoever runs `prepare` is told which file and
which line to fix.
"""

from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """Bad input data. `line` is the 1-based line of the file (the header is line 1), or None for the whole file."""

    def __init__(self, path: Path | str, message: str, line: int | None = None, column: str | None = None):
        self.path = Path(path)
        self.line = line
        self.column = column
        where = f"{self.path}" + (f", line {line}" if line is not None else "")
        what = f"column {column!r}: " if column else ""
        super().__init__(f"{where}: {what}{message}")


class DatasetNotFoundError(FileNotFoundError):
    """No (complete) prepared dataset where one was expected: run `python -m libs.catalog.prepare`."""
