"""Domain errors. Core code raises these; one interceptor maps them to gRPC status codes."""

from __future__ import annotations

from dataclasses import dataclass, field


class DomainError(Exception):
    """Base class; the message is safe to show to callers."""


@dataclass
class FieldViolation:
    field: str
    description: str


class InvalidArgumentError(DomainError):
    """Bad input: maps to INVALID_ARGUMENT with a google.rpc.BadRequest naming the fields."""

    def __init__(self, violations: list[FieldViolation] | FieldViolation):
        self.violations = violations if isinstance(violations, list) else [violations]
        super().__init__("; ".join(f"{v.field}: {v.description}" for v in self.violations))


def invalid(field_name: str, description: str) -> InvalidArgumentError:
    return InvalidArgumentError(FieldViolation(field_name, description))


class AlreadyExistsError(DomainError):
    """Something with the same id exists and differs from what was sent: ALREADY_EXISTS with a
    google.rpc.ResourceInfo per resource (its field path in the request and its id)."""

    def __init__(self, resource_type: str, resources: list[FieldViolation]):
        self.resource_type = resource_type
        self.resources = resources  # field = the request field naming it, description = why
        super().__init__("; ".join(f"{r.field}: {r.description}" for r in resources))


class NotFoundError(DomainError):
    """A named resource does not exist: NOT_FOUND."""


@dataclass
class FailedPreconditionError(DomainError):
    """The system is not in the state the call needs, and retrying will not change that (e.g. the model bundle a
    response was served with is no longer loaded): FAILED_PRECONDITION with an ErrorInfo carrying `reason`."""

    message: str
    reason: str
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)


@dataclass
class UnavailableError(DomainError):
    """A dependency is down: UNAVAILABLE with a google.rpc.RetryInfo hint; `extra` goes into ErrorInfo.metadata."""

    message: str
    retry_after_s: float = 1.0
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)


class DeadlineError(DomainError):
    """The request's deadline ran out: DEADLINE_EXCEEDED."""
