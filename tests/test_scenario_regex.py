"""Scenario regexes run on RE2: no pattern can stall the server, and what RE2 cannot run is refused at load."""

from __future__ import annotations

import asyncio
import signal
import time
from contextlib import contextmanager
from typing import Any, Iterator

import pytest
import yaml

from conftest import CONTRACT, AUTH, SPEC, api_error, minimal
from mockserver.contract import load_contract
from mockserver.errors import LoadErrors
from mockserver.scenarios import Match, Regex, Subject, load_scenarios, rule_matches

TEN_KIB = 10 * 1024


def scenario(pattern: str, status: int = 403) -> str:
    return yaml.safe_dump({"rules": [{"match": {"body": {"name": {"regex": pattern}}}, "respond": {"status": status}}]})


@pytest.fixture
def scripted(make_client, tmp_path):
    async def make(text: str):
        directory = tmp_path / "scenarios"
        directory.mkdir()
        (directory / "s.yaml").write_text(text)
        return await make_client(scenarios_dir=directory, scenario="s")
    return make


class Stalled(Exception):
    pass


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Interrupt a regex stuck inside the server, so a regression fails this test instead of hanging it.

    The test server runs on the test's own event loop: a match that never ends blocks the
    client too, and only a signal gets through (Python's ``re`` checks for them while it
    backtracks). Raised inside the server, it becomes a 500 that the timing asserts catch.
    """
    def stalled(signum: int, frame: Any) -> None:
        raise Stalled(f"still busy after {seconds}s")

    previous = signal.signal(signal.SIGALRM, stalled)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


async def timed(request: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    resp = await request
    await resp.read()
    return resp, time.perf_counter() - started


@pytest.mark.parametrize("pattern, stalls, hits", [
    ("(a|a)*b", "a" * TEN_KIB, "aaab"),
    (".*.*.*.*=x", "=" * TEN_KIB, "k=v=x"),
])
async def test_patterns_that_backtrack_forever_in_re_answer_at_once(scripted, pattern, stalls, hits):
    client = await scripted(scenario(pattern))
    await api_error(await client.post("/v1/webhooks", json=minimal(name=hits), headers=AUTH), 403, "USER_NOT_ALLOWED")
    with deadline(2):
        (resp, took), (health, health_took) = await asyncio.gather(
            timed(client.post("/v1/webhooks", json=minimal(name=stalls), headers=AUTH)),
            timed(client.get("/__mock/health")),
        )
    assert took < 0.1, f"the request took {took:.3f}s"
    assert health.status == 200 and health_took < 0.1, f"health took {health_took:.3f}s"
    assert resp.status == 201, "no match, so the request gets the normal answer"


@pytest.mark.parametrize("pattern, loads", [("(a|a)*b", True), (".*.*.*.*=x", True), ("(?>(a+)+b)", False)])
def test_redos_patterns_load_under_re2_or_are_refused(tmp_path, pattern, loads):
    (tmp_path / "s.yaml").write_text(scenario(pattern))
    if loads:
        assert load_scenarios(tmp_path, CONTRACT)["s"].rules[0].match.body["name"].pattern == pattern
        return
    with pytest.raises(LoadErrors) as caught:
        load_scenarios(tmp_path, CONTRACT)
    [error] = caught.value.errors
    assert str(error) == (f"{tmp_path}/s.yaml:5: at rules.0.match.body.name.regex: "
                          "RE2 cannot compile it: atomic groups are not supported (invalid perl operator: (?>)")


@pytest.mark.parametrize("pattern, why", [
    ("(a)\\1", "backreferences are not supported (invalid escape sequence: \\1)"),
    ("(?P<x>a)(?P=x)", "backreferences are not supported (invalid perl operator: (?P)"),
    ("(?=a)a", "lookahead and lookbehind are not supported (invalid perl operator: (?=)"),
    ("(?<!a)b", "lookahead and lookbehind are not supported (invalid perl operator: (?<!)"),
    ("a++", "possessive quantifiers are not supported (bad repetition operator: ++)"),
    ("a\\Z", "write \\z for the end of the text (invalid escape sequence: \\Z)"),
    ("(", "missing ): ("),
])
def test_what_re2_cannot_compile_is_refused_with_the_reason_and_nothing_on_stderr(tmp_path, capfd, pattern, why):
    (tmp_path / "s.yaml").write_text(scenario(pattern))
    with pytest.raises(LoadErrors, match="RE2 cannot compile it") as caught:
        load_scenarios(tmp_path, CONTRACT)
    assert str(caught.value).endswith(f"regex: RE2 cannot compile it: {why}")
    # RE2 would also log the error through absl; one line from the loader is the whole report.
    assert capfd.readouterr().err == ""


def test_a_pattern_longer_than_the_limit_is_refused(tmp_path):
    (tmp_path / "s.yaml").write_text(scenario("a" * 1001))
    with pytest.raises(LoadErrors, match="regex longer than 1000 characters"):
        load_scenarios(tmp_path, CONTRACT)


@pytest.mark.parametrize("pattern, value, hit", [
    ("revoked", "revoked", True), ("revoked", "not revoked", False), ("revoked", "revoked-key", False),
    ("a|ab", "ab", True), ("(?i)bearer +revoked", "Bearer  REVOKED", True),
    ("4[0-9]", 42, True), ("true", True, True), ('\\{"a": 1\\}', {"a": 1}, True),
    ("caf.", "café", True), ("a.b", "a\ud800b", True), ("a.b", "a\ud800\ud800b", False),
])
def test_the_whole_value_must_match(pattern, value, hit):
    assert Regex(pattern).matches(value) is hit
    assert Regex(pattern).pattern == pattern


def test_a_value_is_encoded_once_however_many_rules_look_at_it(monkeypatch):
    from mockserver import scenarios
    encoded: list[Any] = []
    real = scenarios.regex_text

    def counting(value: Any) -> bytes:
        encoded.append(value)
        return real(value)

    monkeypatch.setattr(scenarios, "regex_text", counting)
    body = {"name": "x" * 100, "penalty_box_data": {"retry_count": 3}}
    subject = Subject("POST", "/v1/webhooks", {"version": "1"}, {"x-api-key": "k"}, {}, lambda: (True, body))
    rules = [Match(headers={"x-api-key": Regex("k")},
                   body={"penalty_box_data": Regex(".*retry.*"), "name": Regex(f"y{i}")}) for i in range(5)]
    assert not any(rule_matches(match, subject) for match in rules)
    assert encoded == ["k", {"retry_count": 3}, "x" * 100]
