"""The request journal: every request the mock answered, bounded, with secrets removed.

Recording appends a small tuple to a ``deque`` with a maximum length; the
JSON-friendly entry is only built when someone reads the journal. On the way in
it only learns secrets (a few look-ups, and a walk of the already parsed body when
the body names a write-only field) and hashes a body it will not keep.

Secrets are removed in two ways, both when an entry is read:

* where the contract marks them: write-only fields (such as passwords and API
  keys) in a JSON object body, and credential headers, are replaced in place;
* wherever else they turn up: the values seen in those places are learnt (a
  bounded :class:`SecretSet`) and every occurrence of one in the method, path,
  query, other header values or any string of the body is replaced, in entries
  recorded before the value was learnt as well as after. The same set keeps them
  out of the log (``logs.scrub_with(journal.secrets)``).

A body is only kept when it is a JSON object, the one shape in which a secret can
be found by its field name. Anything else (form-encoded, invalid or truncated
JSON, single-quoted pseudo-JSON, text that is not UTF-8, a JSON array or scalar)
is journaled as a description of it instead of its content::

    {"omitted": why, "length": bytes, "media_type": type, "sha256": digest}

``omitted``
    ``"not a JSON object"``; ``"too large to keep"`` (a JSON object over
    ``BODY_LIMIT``); ``"nested too deeply"`` (deeper than the journal walks);
    ``"larger than the mock accepts"`` (the mock stopped reading it).
``length``
    Its size in bytes; for a body the mock did not read, the declared
    Content-Length, or null.
``media_type``
    The request's Content-Type without its parameters, as sent, or null.
``sha256``
    The first 16 hex digits of the SHA-256 of the body, so a test can tell which
    body arrived without the journal showing it; null for a body the mock did
    not read. (A short body, such as one form field, can still be guessed from
    it by trying candidates: it hides a test credential from a glance, not from
    a search.)

An empty body is null.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import deque
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Optional, Protocol, Union
from urllib.parse import quote

import re2

from .scenarios import fingerprint
from .validation import parse_json

if TYPE_CHECKING:
    from .engine import MockRequest, MockResponse

REDACTED = "[redacted]"
DEFAULT_LIMIT = 10_000
BODY_LIMIT = 64 * 1024  # bytes of a JSON object body kept per entry
DIGEST_CHARS = 16
SECRETS_LIMIT = 1_000
MIN_SECRET_LENGTH = 4  # shorter values would scrub ordinary words and numbers everywhere
_MAX_DEPTH = 64
_ALWAYS_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-admin-token"})
_SEGMENT_SAFE = "!$&'()*+,;=:@"  # what RFC 3986 allows unencoded in a path segment
_ENCODED_IN_A_PATH = re.compile(r"[^A-Za-z0-9_.~-]")

NOT_AN_OBJECT = "not a JSON object"
TOO_LARGE_TO_KEEP = "too large to keep"
TOO_DEEP = "nested too deeply"
NOT_READ = "larger than the mock accepts"

# What is kept of a body: None (empty), the bytes of a complete JSON object, or for anything
# else (reason, length, digest): never the content.
_Body = Union[None, bytes, tuple[str, Optional[int], Optional[str]]]

# One journal entry as recorded: method, path, query and headers (flattened), body, status,
# operation, scenario, rule, fault, request id, received at, duration, and (in proxy mode,
# else None) the exchange's violations of the contract as (location, field, message).
# A flat tuple of strings and numbers: cheap to build on the request path, and invisible to
# the garbage collector (CPython stops tracking tuples of atomic values), so a full journal
# adds nothing to the cost of a collection.
ViolationRecord = tuple[str, Optional[str], str]
_Record = tuple[str, str, tuple[str, ...], tuple[str, ...], _Body,
                Optional[int], Optional[str], Optional[str], Optional[str], Optional[str], str, float, float,
                Optional[tuple[ViolationRecord, ...]]]


class SharedEntries(Protocol):
    """Journal entries on a store several replicas share (``state.redis.RedisJournal``)."""

    async def append(self, entry: dict[str, Any]) -> None: ...

    async def read(self) -> tuple[list[dict[str, Any]], int]: ...

    async def length(self) -> int: ...

    async def clear(self) -> int: ...


class Journal:
    """Bounded, oldest-first record of requests; ``dropped`` counts what fell off the front.

    ``secrets`` is the set of secret values learnt from the requests recorded; pass one in
    to share it, or hand this one to ``logs.scrub_with``.

    In memory, a request is kept as it arrived and shown (redacted, scrubbed) when read. With
    ``shared`` (the same entries on a store every replica appends to, such as
    ``state.redis.RedisJournal``) each entry is redacted and scrubbed before it leaves the
    process, and read back as written: no secret is ever stored there.
    """

    def __init__(self, limit: int = DEFAULT_LIMIT, secret_fields: Iterable[str] = (),
                 secret_headers: Iterable[str] = (), secrets: SecretSet | None = None,
                 shared: SharedEntries | None = None) -> None:
        self.limit = max(1, limit)
        self.shared = shared
        self.entries: deque[_Record] = deque(maxlen=self.limit)
        self.dropped = 0
        self.redactor = Redactor(secret_fields, secret_headers)
        self.secrets = secrets if secrets is not None else SecretSet()
        self._credential_headers = tuple(sorted(self.redactor.header_names))
        # A body can only hold a write-only field if its name is in it, or is spelt with escapes.
        self._field_marks = tuple(f'"{name}"'.encode() for name in sorted(self.redactor.fields))
        if self._field_marks:
            self._field_marks += (b"\\",)

    async def record(self, req: MockRequest, resp: MockResponse, received_at: float, duration_ms: float,
                     violations: Iterable[ViolationRecord] | None = None) -> _Record:
        """Keep one answered request; ``violations`` (proxy mode) are the ways the exchange broke
        the contract, as (location, field, message). Returns the record, for :meth:`entry`."""
        headers = req.headers
        for name in self._credential_headers:
            value = headers.get(name)
            if value:
                self._learn_credential(value)
        rec = (
            req.method, req.path, _flat(req.query), _flat(headers), self._keep(req),
            resp.status, resp.operation, resp.scenario, resp.rule, resp.fault, resp.request_id,
            received_at, duration_ms, None if violations is None else tuple(violations),
        )
        if self.shared is not None:
            await self.shared.append(self.entry(rec))
        else:
            if len(self.entries) == self.limit:
                self.dropped += 1
            self.entries.append(rec)
        return rec

    def _keep(self, req: MockRequest) -> _Body:
        """The part of the body worth keeping; learns the secrets in it on the way."""
        if req.body_too_large:
            return (NOT_READ, _declared_length(req.headers.get("content-length")), None)
        body = req.body
        if not body:
            return None
        ok, value = req.json()  # the engine's parse, cached: no second one here
        if ok:
            for mark in self._field_marks:
                if mark in body:
                    for secret in self.redactor.secret_values(value):
                        self._learn(secret)
                    break
        if ok and type(value) is dict:
            if len(body) <= BODY_LIMIT:
                return body
            return (TOO_LARGE_TO_KEEP, len(body), digest(body))
        # Hashed now rather than kept: the content may hold a secret no field name marks.
        return (NOT_AN_OBJECT, len(body), digest(body))

    def _learn_credential(self, value: str) -> None:
        self._learn(value)
        scheme, _, token = value.strip().partition(" ")
        if scheme.isalnum() and token.strip():  # "Bearer <token>": the token alone is a secret too
            self._learn(token.strip())

    def _learn(self, value: str) -> None:
        add = self.secrets.add
        add(value)
        if _ENCODED_IN_A_PATH.search(value):  # in a path it arrives percent-encoded, one of two ways
            add(quote(value, safe=""))
            add(quote(value, safe=_SEGMENT_SAFE))

    async def clear(self) -> int:
        """Forget the entries (returns how many there were); the known secrets stay, or a value
        learnt before could show after."""
        if self.shared is not None:
            return await self.shared.clear()
        cleared = len(self.entries)
        self.entries.clear()
        self.dropped = 0
        return cleared

    async def read(self, path: str | None = None, method: str | None = None,
                   status: int | None = None) -> tuple[list[dict[str, Any]], int]:
        """Entries as JSON-ready dicts, oldest first, optionally filtered, and how many fell off
        the front."""
        if self.shared is not None:
            entries, dropped = await self.shared.read()
            wanted = method.upper() if method is not None else None
            return [e for e in entries if (path is None or e["path"] == path)
                    and (wanted is None or e["method"] == wanted)
                    and (status is None or e["status"] == status)], dropped
        return [self.entry(rec) for rec in self._matching(path, method, status)], self.dropped

    async def snapshot(self, path: str | None = None, method: str | None = None,
                       status: int | None = None) -> list[dict[str, Any]]:
        """Entries as JSON-ready dicts, oldest first, optionally filtered."""
        return (await self.read(path, method, status))[0]

    def _matching(self, path: str | None, method: str | None, status: int | None) -> list[_Record]:
        """The records of requests with that path, method and status (None: any), oldest first."""
        wanted = method.upper() if method is not None else None
        return [rec for rec in list(self.entries)
                if (path is None or rec[1] == path) and (wanted is None or rec[0] == wanted)
                and (status is None or rec[5] == status)]

    def entry(self, rec: _Record) -> dict[str, Any]:
        (method, path, query, headers, body, status, operation, scenario, rule, fault, request_id,
         received_at, duration_ms, violations) = rec
        sent = dict(zip(headers[::2], headers[1::2]))
        shown = self.redactor.headers(sent.items())
        # Everything the client sent, as shown, gathered on the way for one search for secrets.
        strings: list[str] | None = [method, path, *query, *shown, *shown.values()] if self.secrets else None
        entry = {
            "method": method,
            "path": path,
            "query": dict(zip(query[::2], query[1::2])),
            "headers": shown,
            "body": self._body(body, media_type(sent.get("content-type")), strings),
            "status": status,
            "operation": operation,
            "scenario": scenario,
            "rule": rule,
            "fault": fault,
            "request_id": request_id,
            "received_at": datetime.fromtimestamp(received_at, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "duration_ms": round(duration_ms, 3),
        }
        if strings is not None:
            joined = "\n".join(strings)
            scrub = self.secrets.scrub
            if scrub(joined) is not joined:  # rare: only then is each part scrubbed on its own
                for key in ("method", "path", "query", "headers", "body"):
                    entry[key] = _scrubbed(entry[key], scrub)
        if violations is not None:
            entry["violations"] = [self._violation(v) for v in violations]
        return entry

    async def violations(self, path: str | None = None, method: str | None = None, status: int | None = None,
                         location: str | None = None) -> list[dict[str, Any]]:
        """Every violation recorded with an entry (proxy mode), oldest first, optionally filtered,
        each with the request id, method, path and status of its exchange."""
        out = []
        if self.shared is not None:
            for e in (await self.read(path, method, status))[0]:
                for violation in e.get("violations") or ():
                    if location is None or violation["location"] == location:
                        out.append({"request_id": e["request_id"], "method": e["method"], "path": e["path"],
                                    "status": e["status"], **violation})
            return out
        for rec in self._matching(path, method, status):
            found = rec[13]
            if not found:
                continue
            shown_path = self.secrets.scrub(rec[1]) if self.secrets else rec[1]
            for violation in found:
                if location is not None and violation[0] != location:
                    continue
                out.append({"request_id": rec[10], "method": rec[0], "path": shown_path, "status": rec[5],
                            **self._violation(violation)})
        return out

    def _violation(self, violation: ViolationRecord) -> dict[str, Any]:
        location, field, message = violation
        if self.secrets:  # messages never quote values; a field name is still the client's text
            field = None if field is None else self.secrets.scrub(field)
            message = self.secrets.scrub(message)
        return {"location": location, "field": field, "message": message}

    def _body(self, body: _Body, media: str | None, strings: list[str] | None) -> Any:
        if body is None:
            return None
        if isinstance(body, bytes):
            return self.redactor.body(body, media, strings)
        if media is not None and strings is not None:
            strings.append(media)
        why, length, hashed = body
        return omitted(why, length, media, hashed)


def _flat(pairs: Any) -> tuple[str, ...]:
    """name, value, name, value, ...: one tuple of strings, which the garbage collector can ignore."""
    out: list[str] = []
    for name, value in pairs.items():
        out.append(name)
        out.append(value)
    return tuple(out)


def digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()[:DIGEST_CHARS]


def omitted(why: str, length: int | None, media: str | None, hashed: str | None) -> dict[str, Any]:
    """What the journal shows instead of a body it does not keep (see the module docstring)."""
    return {"omitted": why, "length": length, "media_type": media, "sha256": hashed}


def media_type(content_type: str | None) -> str | None:
    """``text/plain; charset=utf-8`` -> ``text/plain``; None when there is none.

    Not lower-cased: a secret sent as the type must still match itself when scrubbed.
    """
    if not content_type:
        return None
    return content_type.partition(";")[0].strip() or None


def _declared_length(value: str | None) -> int | None:
    return int(value) if value and value.isascii() and value.isdigit() else None


class Redactor:
    """Removes secrets from headers and bodies by where they stand: credential headers and
    the contract's write-only fields."""

    def __init__(self, secret_fields: Iterable[str], secret_headers: Iterable[str]) -> None:
        self.fields = frozenset(secret_fields)
        self.header_names = _ALWAYS_SECRET_HEADERS | {h.lower() for h in secret_headers}

    def headers(self, headers: Iterable[tuple[str, str]]) -> dict[str, str]:
        """Credential headers become a fingerprint, so bindings can still be told apart."""
        return {
            name: (f"{REDACTED} {fingerprint(value)}" if name in self.header_names else value)
            for name, value in headers
        }

    def body(self, raw: bytes, media: str | None = None, strings: list[str] | None = None) -> Any:
        """A JSON object with its write-only fields redacted; a description of anything else.

        Every string shown (keys included) is appended to ``strings`` when one is given.
        """
        if not raw:
            return None
        ok, value = parse_json(raw)
        if ok and type(value) is dict and _depth_within(value, _MAX_DEPTH):
            return self.value(value, strings)
        if strings is not None and media is not None:
            strings.append(media)
        return omitted(TOO_DEEP if ok and type(value) is dict else NOT_AN_OBJECT, len(raw), media, digest(raw))

    def value(self, value: Any, strings: list[str] | None = None) -> Any:
        if isinstance(value, dict):
            if strings is not None:
                strings.extend(value)
            return {k: (REDACTED if k in self.fields and v is not None else self.value(v, strings))
                    for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v, strings) for v in value]
        if strings is not None and isinstance(value, str):
            strings.append(value)
        return value

    def secret_values(self, value: Any) -> Iterator[str]:
        """Every string under a write-only field, at any depth; iterative, so depth costs no stack."""
        fields = self.fields
        stack = [value]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                for k, v in node.items():
                    if k in fields:
                        if isinstance(v, str):
                            yield v
                        elif isinstance(v, (dict, list)):
                            found: list[str] = []
                            _strings(v, found)  # keys too: all of it is the secret's
                            yield from found
                    elif isinstance(v, (dict, list)):
                        stack.append(v)
            elif isinstance(node, list):
                stack.extend(v for v in node if isinstance(v, (dict, list)))


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


def _strings(value: Any, out: list[str]) -> None:
    """Every string in ``value``, keys included, appended to ``out``."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            out.append(node)
        elif isinstance(node, dict):
            out.extend(k for k in node if isinstance(k, str))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _scrubbed(value: Any, scrub: Any) -> Any:
    # Recursion is bounded: bodies deeper than _MAX_DEPTH are described, not shown.
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {scrub(k): _scrubbed(v, scrub) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrubbed(v, scrub) for v in value]
    return value


class SecretSet:
    """The most recent secret values seen (``limit`` of them), to be scrubbed wherever they turn up.

    Values shorter than ``min_length`` are ignored. Adding is cheap (it happens on the
    request path); scrubbing runs one RE2 search over all values (linear in the text,
    whatever their number) plus a plain substring check of the few added since that
    pattern was built, so a stream of new values does not rebuild it for every line.
    Safe to share between threads: the journal adds on the event loop, logging may
    scrub from any thread. The lock is re-entrant because a finalizer run by a garbage
    collection in the middle of a rebuild may log, and so scrub, on the same thread.
    """

    FRESH_LIMIT = 64  # values checked one by one before the pattern is rebuilt
    # Longer values would make the pattern slow to build and to search; they, and values RE2
    # cannot take (not UTF-8), are checked one by one instead, the most recent LITERAL_LIMIT.
    PATTERN_MAX = 128
    LITERAL_LIMIT = 64

    def __init__(self, limit: int = SECRETS_LIMIT, min_length: int = MIN_SECRET_LENGTH) -> None:
        self.limit = max(1, limit)
        self.min_length = max(1, min_length)
        # value -> when it was last added; insertion order is recency: the first is forgotten first
        self._values: dict[str, int] = {}
        self._added = 0
        self._fresh: dict[str, None] = {}  # known but not yet in the pattern
        self._pattern: Any = None
        self._compiled: frozenset[str] = frozenset()  # the values in the pattern
        self._literal: tuple[str, ...] = ()  # values checked one by one, longest first
        self._lock = threading.RLock()

    def __len__(self) -> int:
        return len(self._values)

    def add(self, value: str) -> None:
        if len(value) < self.min_length:
            return
        # The same credential arrives with every request: while it is among the newer half,
        # moving it to the end buys nothing, and this check is all a repeat costs.
        if self._values.get(value, -self.limit) > self._added - self.limit // 2:
            return
        with self._lock:
            values = self._values
            if value in values:
                del values[value]  # seen again: the most recent now
            elif value not in self._compiled:
                self._fresh[value] = None
            self._added += 1
            values[value] = self._added
            if len(values) > self.limit:
                oldest = next(iter(values))
                del values[oldest]
                self._fresh.pop(oldest, None)  # still in the pattern until the next rebuild: harmless

    def scrub(self, text: str) -> str:
        """``text`` with every known value replaced by ``[redacted]``, longest first; ``text``
        itself (the same object) when none is in it."""
        if not self._values or len(text) < self.min_length:
            return text
        if self._fresh:
            with self._lock:
                fresh = tuple(self._fresh)
            # A fresh value in the text means the pattern must know it now, so that
            # overlapping secrets are still replaced longest first.
            if len(fresh) > self.FRESH_LIMIT or any(value in text for value in fresh):
                self._compile()
        pattern = self._pattern
        if pattern is not None:
            try:
                if pattern.search(text):
                    text = pattern.sub(REDACTED, text)
            except UnicodeEncodeError:  # lone surrogates: RE2 only reads UTF-8
                with self._lock:
                    values = sorted(self._values, key=len, reverse=True)
                return _replace_each(text, values)
        for value in self._literal:
            if value in text:
                text = text.replace(value, REDACTED)
        return text

    def _compile(self) -> None:
        # Under the lock throughout: two threads compiling at once could otherwise leave the
        # older pattern in place, without a value that is no longer fresh either.
        with self._lock:
            short: list[str] = []
            other: list[str] = []
            for value in reversed(self._values):  # newest first, for the cap on ``other``
                if len(value) <= self.PATTERN_MAX and _utf8(value):
                    short.append(value)
                elif len(other) < self.LITERAL_LIMIT:
                    other.append(value)
            short.sort(key=len, reverse=True)
            other.sort(key=len, reverse=True)
            pattern = None
            if short:
                # Leftmost-first alternation, longest listed first: at any position the longest wins.
                options = re2.Options()
                options.log_errors = False  # RE2 would write to stderr, around logging and its scrubbing
                options.max_mem = 64 << 20
                try:
                    pattern = re2.compile("|".join(re2.escape(v) for v in short), options)
                except re2.error:  # beyond RE2's memory: slower, but nothing is missed
                    other = sorted(short + other, key=len, reverse=True)
            self._pattern, self._literal = pattern, tuple(other)
            self._compiled = frozenset(self._values)
            self._fresh.clear()


def _utf8(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates, from bytes that were not UTF-8
        return False
    return True


def _replace_each(text: str, values: list[str]) -> str:
    for value in values:
        if value in text:
            text = text.replace(value, REDACTED)
    return text
