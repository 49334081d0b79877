import json
import logging

from libs.logs import JsonFormatter, fields, redact_id, redact_text


def test_redaction_is_stable_and_hides_the_value():
    assert redact_id("17850") == redact_id("17850")
    assert "17850" not in redact_id("17850")
    assert redact_id("17850") != redact_id("17851")
    assert "lantern" not in redact_text("white lantern") and "len=13" in redact_text("white lantern")


def test_json_formatter_emits_structured_fields():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "served", (), None)
    record.fields = fields(user=redact_id("17850"))["fields"]
    out = json.loads(JsonFormatter("gateway").format(record))
    assert out["service"] == "gateway" and out["msg"] == "served" and out["user"].startswith("u_")


def test_pseudonyms_are_keyed_by_configuration_not_by_the_code():
    from libs import logs

    try:
        logs.set_key(b"a" * 32)
        with_a = redact_id("17850")
        logs.set_key(b"b" * 32)
        assert redact_id("17850") != with_a  # without the key, a guessed id cannot be matched against the logs
        logs.set_key(b"a" * 32)
        assert redact_id("17850") == with_a
    finally:
        logs.set_key(b"test-key-restored-after-this-test")
