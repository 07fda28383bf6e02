"""The request journal: every request the mock answered, bounded, with secrets redacted.

Recording is an O(1) append of a small tuple into a ``deque`` with a maximum
length; the JSON-friendly entry is only built when someone reads the journal.
Secrets are removed at that point too: write-only fields of the contract (such as
passwords and API keys) and credential headers never leave this module.
"""

from __future__ import annotations

import re
from collections import deque
from datetime import datetime, timezone
from typing import Any, Iterable, Optional

from .engine import MockRequest, MockResponse
from .scenarios import fingerprint
from .validation import parse_json

REDACTED = "[redacted]"
DEFAULT_LIMIT = 10_000
BODY_LIMIT = 64 * 1024  # bytes of a body kept per entry
_MAX_DEPTH = 64
_ALWAYS_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-admin-token"})


# One journal entry as recorded: method, path, query and headers (flattened), body, whether the
# body was cut, status, operation, scenario, rule, fault, request id, received at, duration.
# A flat tuple of strings and numbers: cheap to build on the request path, and invisible to
# the garbage collector (CPython stops tracking tuples of atomic values), so a full journal
# adds nothing to the cost of a collection.
_Record = tuple[str, str, tuple[str, ...], tuple[str, ...], bytes, bool,
                int, Optional[str], Optional[str], Optional[str], Optional[str], str, float, float]


class Journal:
    """Bounded, oldest-first record of requests; ``dropped`` counts what fell off the front."""

    def __init__(self, limit: int = DEFAULT_LIMIT, secret_fields: Iterable[str] = (),
                 secret_headers: Iterable[str] = ()) -> None:
        self.limit = max(1, limit)
        self.entries: deque[_Record] = deque(maxlen=self.limit)
        self.dropped = 0
        self.redactor = Redactor(secret_fields, secret_headers)

    def record(self, req: MockRequest, resp: MockResponse, received_at: float, duration_ms: float) -> None:
        if len(self.entries) == self.limit:
            self.dropped += 1
        body = req.body
        cut = req.body_too_large or len(body) > BODY_LIMIT
        self.entries.append((
            req.method, req.path, _flat(req.query), _flat(req.headers),
            body[:BODY_LIMIT] if len(body) > BODY_LIMIT else body, cut,
            resp.status, resp.operation, resp.scenario, resp.rule, resp.fault, resp.request_id,
            received_at, duration_ms,
        ))

    def clear(self) -> None:
        self.entries.clear()
        self.dropped = 0

    def __len__(self) -> int:
        return len(self.entries)

    def snapshot(self, path: str | None = None, method: str | None = None,
                 status: int | None = None) -> list[dict[str, Any]]:
        """Entries as JSON-ready dicts, oldest first, optionally filtered."""
        out = []
        for rec in list(self.entries):
            if path is not None and rec[1] != path:
                continue
            if method is not None and rec[0] != method.upper():
                continue
            if status is not None and rec[6] != status:
                continue
            out.append(self._entry(rec))
        return out

    def _entry(self, rec: _Record) -> dict[str, Any]:
        (method, path, query, headers, body, cut, status, operation, scenario, rule, fault, request_id,
         received_at, duration_ms) = rec
        return {
            "method": method,
            "path": path,
            "query": dict(zip(query[::2], query[1::2])),
            "headers": self.redactor.headers(zip(headers[::2], headers[1::2])),
            "body": self.redactor.body(body, cut),
            "status": status,
            "operation": operation,
            "scenario": scenario,
            "rule": rule,
            "fault": fault,
            "request_id": request_id,
            "received_at": datetime.fromtimestamp(received_at, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "duration_ms": round(duration_ms, 3),
        }


def _flat(pairs: Any) -> tuple[str, ...]:
    """name, value, name, value, ...: one tuple of strings, which the garbage collector can ignore."""
    out: list[str] = []
    for name, value in pairs.items():
        out.append(name)
        out.append(value)
    return tuple(out)


class Redactor:
    """Removes secrets from headers and bodies; used by the journal and by logging."""

    def __init__(self, secret_fields: Iterable[str], secret_headers: Iterable[str]) -> None:
        self.fields = frozenset(secret_fields)
        self.header_names = _ALWAYS_SECRET_HEADERS | {h.lower() for h in secret_headers}
        names = "|".join(re.escape(f) for f in sorted(self.fields)) or r"(?!)"
        self._raw = re.compile(r'("(?:' + names + r')"\s*:\s*)("(?:[^"\\]|\\.)*"?|[^,}\]\s]*)')

    def headers(self, headers: Iterable[tuple[str, str]]) -> dict[str, str]:
        """Credential headers become a fingerprint, so bindings can still be told apart."""
        return {
            name: (f"{REDACTED} {fingerprint(value)}" if name in self.header_names else value)
            for name, value in headers
        }

    def body(self, raw: bytes, truncated: bool = False) -> Any:
        """Parsed and redacted JSON, or redacted text when the body is not (complete) JSON."""
        if not raw:
            return None
        ok, value = (False, None) if truncated else parse_json(raw)
        if ok and _depth_within(value, _MAX_DEPTH):
            return self.value(value)
        return self.text(raw.decode("utf-8", "replace"))

    def value(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: (REDACTED if k in self.fields and v is not None else self.value(v)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v) for v in value]
        return value

    def text(self, text: str) -> str:
        return self._raw.sub(lambda m: m.group(1) + '"' + REDACTED + '"', text)


def _depth_within(value: Any, limit: int) -> bool:
    """True when nesting is at most ``limit`` deep; iterative so hostile input cannot blow the stack."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return False
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
    return True

