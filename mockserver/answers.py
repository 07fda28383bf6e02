"""Every answer the mock gives, as a plain value, built here and nowhere else.

The engine (contract routes), the admin API and the transport's error handler all build
a :class:`MockResponse` through these functions; ``http.to_http`` is the one place that
turns it into HTTP. This module imports no aiohttp.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


from . import jsoncodec
from .errors import PROBLEM_DETAILS, ApiProblem, ErrorShape

PROBLEM = PROBLEM_DETAILS.media_type


@dataclass(slots=True)
class MockResponse:
    """What to send back, and what answered (for the journal). Treated as immutable; not frozen
    only because frozen dataclasses cost noticeably more to build on the request path."""

    status: int
    body: bytes
    request_id: str
    headers: tuple[tuple[str, str], ...] = ()
    delay_ms: int = 0
    fault: str | None = None
    operation: str | None = None
    scenario: str | None = None
    rule: str | None = None
    close: bool = False
    content_type: str | None = "application/json"


def json_answer(status: int, value: Any, request_id: str, operation: str | None = None,
                headers: tuple[tuple[str, str], ...] = ()) -> MockResponse:
    """A JSON answer (a contract body or an admin answer)."""
    return MockResponse(status=status, body=dump(value), request_id=request_id, headers=headers, operation=operation)


def error_answer(failure: ApiProblem, request_id: str, operation: str | None, shape: ErrorShape) -> MockResponse:
    """An answer in the contract's error shape (RFC 9457 problem details for a contract
    that has no error shape of its own)."""
    return MockResponse(status=failure.status, body=dump(shape.body(failure)), request_id=request_id,
                        headers=failure.headers, operation=operation, content_type=shape.media_type)


def scripted_answer(status: int, value: Any, request_id: str, operation: str | None, scenario: str | None,
                    rule: Any, content_type: str | None = "application/json") -> MockResponse:
    """The answer a scenario rule (or ``Prefer``) chose, with its delay, headers and fault."""
    if rule is None:
        if content_type is None:  # the contract declares no body for this status (204 and the like)
            return MockResponse(status=status, body=b"", request_id=request_id, operation=operation,
                                content_type=None)
        raw = value.encode() if isinstance(value, str) and "json" not in content_type else dump(value)
        return MockResponse(status=status, body=raw, request_id=request_id, operation=operation,
                            content_type=content_type)
    respond = rule.respond
    if respond.fault == "empty":
        raw = b""
    elif respond.fault == "malformed":  # the first half of what would have been sent: cut off mid-way
        whole = dump(value)
        raw = whole[:max(1, len(whole) // 2)]
    else:
        raw = dump(value)
    return MockResponse(status=status, body=raw, request_id=request_id, headers=respond.headers,
                        delay_ms=respond.delay_ms, fault=respond.fault, operation=operation,
                        scenario=scenario, rule=rule.label, content_type=content_type or "application/json")


def dump(value: Any) -> bytes:
    """Compact UTF-8 JSON, exact for every integer."""
    return jsoncodec.dumps(value)
