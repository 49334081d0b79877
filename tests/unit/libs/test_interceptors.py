import grpc
from google.rpc import error_details_pb2, status_pb2

from libs import errors
from libs.interceptors import to_status


def _details(trailers) -> status_pb2.Status:
    (key, value), = trailers
    assert key == "grpc-status-details-bin"
    return status_pb2.Status.FromString(value)


def test_invalid_argument_carries_bad_request_with_fields():
    exc = errors.InvalidArgumentError([errors.FieldViolation("page_size", "must not be negative"),
                                       errors.FieldViolation("user_id", "is required")])
    code, message, trailers = to_status(exc)
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert "page_size" in message
    bad = error_details_pb2.BadRequest()
    assert _details(trailers).details[0].Unpack(bad)
    assert [v.field for v in bad.field_violations] == ["page_size", "user_id"]


def test_unavailable_carries_retry_info():
    code, _, trailers = to_status(errors.UnavailableError("retrieval down", retry_after_s=1.5))
    assert code is grpc.StatusCode.UNAVAILABLE
    info = error_details_pb2.RetryInfo()
    assert _details(trailers).details[0].Unpack(info)
    assert info.retry_delay.seconds == 1 and info.retry_delay.nanos == 500_000_000


def test_already_exists_names_each_resource_by_its_request_field():
    exc = errors.AlreadyExistsError("shop.gateway.v1.Event", [
        errors.FieldViolation("events[2].event_id", "'e7' was stored with a different payload")])
    code, message, trailers = to_status(exc)
    assert code is grpc.StatusCode.ALREADY_EXISTS and "events[2].event_id" in message
    info = error_details_pb2.ResourceInfo()
    assert _details(trailers).details[0].Unpack(info)
    assert (info.resource_type, info.resource_name) == ("shop.gateway.v1.Event", "events[2].event_id")


def test_unknown_errors_are_masked_as_internal():
    code, message, _ = to_status(KeyError("secret internals"))
    assert code is grpc.StatusCode.INTERNAL
    assert "secret" not in message


def test_deadline_and_not_found():
    assert to_status(errors.DeadlineError("late"))[0] is grpc.StatusCode.DEADLINE_EXCEEDED
    assert to_status(errors.NotFoundError("gone"))[0] is grpc.StatusCode.NOT_FOUND
