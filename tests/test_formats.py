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
    assert [(v.code, v.field) for v in found] == [("INVALID_FIELD", "secret_rolled_at")]


def test_null_date_time_is_allowed():
    assert not body_violations(CREATE, minimal(secret_rolled_at=None))
