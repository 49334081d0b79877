"""libs.grpc_server.call_timeout: what an inner service gives its core of the caller's deadline."""

from __future__ import annotations

import pytest

from libs.grpc_server import call_timeout


class _Context:
    def __init__(self, remaining: float | None) -> None:
        self.remaining = remaining

    def time_remaining(self) -> float | None:
        return self.remaining


@pytest.mark.parametrize(("remaining", "expected"), [(None, 2.0), (1.0, 0.99), (0.005, 0.001), (-3.0, 0.001)])
def test_the_callers_deadline_less_room_for_the_answer_else_the_default(remaining, expected):
    assert call_timeout(_Context(remaining), 2.0) == pytest.approx(expected)
