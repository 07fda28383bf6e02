"""uri and date-time checks really run (jsonschema skips them without optional packages)."""

from __future__ import annotations

import pytest

from conftest import CREATE, minimal
from mockserver.formats import is_date_time, is_uri
from mockserver.validation import body_violations


@pytest.mark.parametrize("value", [
    "https://example.com", "http://example.com:8080/a/b?c=d#e", "https://user:pw@example.com/x", "HTTPS://EXAMPLE.COM",
    "https://[::1]:9000/hook",
])
def test_good_urls_pass(value):
    assert is_uri(value)
    assert not body_violations(CREATE, minimal(url=value))


@pytest.mark.parametrize("value", [
    "example.com", "/relative/path", "https://", "https://exa mple.com", "https://example.com:99999",
    "http://<script>", "https//example.com", "", "HTTP://", "https://example.com/a b", "http://[::1/x",
])
def test_bad_urls_are_rejected(value):
    found = body_violations(CREATE, minimal(url=value))
    assert [v.field for v in found] == ["url"], found


@pytest.mark.parametrize("value", [
    "2024-04-12T15:22:37Z", "2024-04-12t15:22:37z", "2024-04-12T15:22:37.123+02:00", "2016-12-31T23:59:60Z",
])
def test_good_date_times_pass(value):
    assert is_date_time(value)
    assert not body_violations(CREATE, minimal(secret_rolled_at=value))


@pytest.mark.parametrize("value", [
    "2024-04-12", "2024-04-12T15:22:37", "2024-02-30T00:00:00Z", "2024-04-12 15:22:37Z", "yesterday", "",
    "2024-04-12T25:00:00Z",
])
def test_bad_date_times_are_rejected(value):
    found = body_violations(CREATE, minimal(secret_rolled_at=value))
    assert [(v.kind, v.field) for v in found] == [("invalid-field", "secret_rolled_at")]


def test_null_date_time_is_allowed():
    assert not body_violations(CREATE, minimal(secret_rolled_at=None))


@pytest.mark.parametrize(("fmt", "value", "ok"), [
    ("int32", 2 ** 31 - 1, True), ("int32", 2 ** 31, False), ("int32", -(2 ** 31), True), ("int32", -(2 ** 31) - 1, False),
    ("int64", 2 ** 63 - 1, True), ("int64", 2 ** 63, False), ("int64", -(2 ** 63) - 1, False), ("int64", 2 ** 70, False),
])
def test_integer_formats_are_ranges_on_both_validators(fmt, value, ok):
    from mockserver.contract.model import Validator

    schema = {"type": "object", "properties": {"n": {"type": "integer", "format": fmt, "minimum": -(2 ** 80)}}}
    fast = Validator(schema, fast=True)
    assert fast.fast  # the compiled path takes integer formats too
    assert fast.is_valid({"n": value}) is ok
    assert fast.reference.is_valid({"n": value}) is ok


def test_draft_2020_12_time_wants_an_offset():
    from mockserver.formats import FORMAT_CHECKER

    assert FORMAT_CHECKER.conforms("12:00:00Z", "time")
    assert not FORMAT_CHECKER.conforms("12:00:00", "time")


@pytest.mark.parametrize("text", [b"18446744073709551616", b"-9223372036854775809", b"[123456789012345678901234567890]"])
def test_integers_of_any_length_are_read_exactly(text):
    import json

    from mockserver import jsoncodec
    from mockserver.validation import parse_json

    ok, value = parse_json(text)
    assert ok and value == json.loads(text)
    assert jsoncodec.dumps(value) == text


@pytest.mark.parametrize("text", [b"NaN", b"[Infinity]", b"1e400", b'{"a": 1234567890123456789012, "b": NaN}'])
def test_what_json_does_not_allow_is_refused(text):
    from mockserver.validation import parse_json

    assert parse_json(text) == (False, None)
