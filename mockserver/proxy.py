"""``mockserver proxy``: pass requests to the real API and report where an exchange breaks the contract.

Every request goes to the one upstream given at start-up, built from its base URL and the
request's path and query only, so an absolute-form request target, a ``Host`` header or a
redirect never sends it anywhere else (redirects are passed back, never followed). The
upstream's answer goes back unchanged; when the request or the answer breaks the contract it
carries ``X-Mock-Violations``, a compact JSON array of ``{"location", "field", "message"}``.

The checks are plain values in and out (:class:`ContractCheck`), built once at start-up from
the compiled contract: the request as the engine checks it, the answer against the status,
media type and schema the contract gives. What counts:

* a request the contract refuses is a violation only when the upstream accepted it (2xx):
  the client relies on something the contract does not promise. Refused with a listed 4xx it
  is the contract at work; refused with another 4xx than the contract's, the status is reported;
* an answer with a status the operation does not list, another media type, a body its schema
  rejects, or without the contract's request id header;
* a property the contract does not name is never a violation (the contract may grow).

Every exchange is journaled with its violations (``GET /__mock/violations``); ``--record``
writes the answers as a scenario file (``record.py``). An upstream that cannot be reached,
refuses, drops the connection or is slower than ``upstream_timeout`` gets a 502 in the
contract's error shape naming the upstream and what went wrong.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Iterable, Mapping, Sequence

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from . import admin
from .answers import MockResponse
from .contract import Operation, Validator, compile_validator
from .contract.model import opened
from .engine import Engine, MockRequest
from .errors import UNABLE_TO_PROCESS, UNAUTHORISED, UNSUPPORTED_MEDIA_TYPE, ApiProblem, Violation, problem
from .http import MOCK, guards, incoming, read_up_to, to_http
from .logs import ACCESS
from .mock import Mock, build_mock
from .record import Recorder
from .settings import Settings
from .validation import (
    violations_of,
    body_violations,
    cookies,
    has_credentials,
    media_type_accepted,
    parameter_violations,
    parse_json,
)

log = logging.getLogger("mockserver.proxy")

VIOLATIONS_HEADER = "X-Mock-Violations"
VIOLATIONS_HEADER_LIMIT = 8 * 1024
DEFAULT_UPSTREAM_TIMEOUT_S = 30.0
# What the proxy reads of one answer, and what it decompresses of it to check it: far beyond any
# answer of this API, and a bound against an upstream that streams without end.
UPSTREAM_BODY_LIMIT = 64 * 1024 * 1024

# Hop-by-hop headers (RFC 9110 7.6.1) belong to one connection, never passed on. Host and the
# framing headers are the proxy's to set for its own connection; the body was read whole
# (Expect was answered already).
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
                         "proxy-connection", "te", "trailer", "trailers", "transfer-encoding", "upgrade"})
_NOT_FORWARDED = _HOP_BY_HOP | {"host", "content-length", "expect"}
_NOT_RETURNED = _HOP_BY_HOP | {"content-length"}
# Headers aiohttp would add of its own accord: the upstream sees only what the client sent.
_SKIP_AUTO = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")


# ---------------------------------------------------------------- the checks, on plain values


@dataclass(frozen=True, slots=True)
class Finding:
    """One way an exchange breaks the contract."""

    location: str  # "request" or "response"
    field: str | None  # a dotted body path, a header or parameter name, or None for the whole
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"location": self.location, "field": self.field, "message": self.message}


@dataclass(frozen=True, slots=True)
class Checked:
    """What the checks made of one exchange: the operation (None when the request fits none),
    every finding, and the answer's body as JSON (``parsed`` is False when it is none)."""

    operation: Operation | None
    findings: tuple[Finding, ...]
    parsed: bool
    value: Any


class ContractCheck:
    """Request and answer -> every way they break the contract. Validators are built here, once."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        contract = engine.contract
        lenient: dict[int, Validator] = {}

        def answer_validator(schema: Mapping[str, Any], declared: Validator | None) -> Validator:
            # A property the contract does not name is not a violation: answers are checked
            # against the schema with every closed object opened (built once per schema).
            known = lenient.get(id(schema))
            if known is None:
                open_schema, changed = opened(schema)
                known = compile_validator(open_schema, fast=True) if changed or declared is None else declared
                lenient[id(schema)] = known
            return known

        self.validators = {(op.operation_id, status): answer_validator(resp.schema, resp.validator)
                           for op in contract.operations for status, resp in op.responses.items()}
        shape = engine.error_shape
        self.error_media = None if shape.problem_details else shape.media_type
        self.error_validator = answer_validator(contract.error_schema, None) if self.error_media else None
        # A contract that names no request id header promises none.
        self.request_id = contract.request_id if contract.request_id.declared else None

    def exchange(self, req: MockRequest, routed: tuple[Operation, Mapping[str, str]] | ApiProblem,
                 status: int, headers: Mapping[str, str], body: bytes | None) -> Checked:
        """Check one exchange. ``headers`` are the answer's, with lower-case names; ``body`` is
        the decoded answer (None when its content coding is one the proxy cannot undo)."""
        found: list[Finding] = []
        success = 200 <= status < 300
        parsed, value = False, None
        op: Operation | None = None
        if isinstance(routed, ApiProblem):
            if success:
                found.append(Finding("request", None, routed.message))
            elif status >= 400 and self.error_validator is not None:
                found += self._media(self.error_media, headers, status)
                parsed, value, more = self._json(self.error_validator, body)
                found += more
        else:
            op, params = routed
            expected, refused = self.request(op, params, req)
            if refused and success:
                found += [Finding("request", v.field, v.message) for v in refused]
            declared = op.responses.get(status)
            if declared is None:
                listed = ", ".join(map(str, sorted(op.responses)))
                said = f"; for this request the contract answers {expected}" if expected and status >= 400 else ""
                found.append(Finding("response", None, f"status {status} is not a status of {op.operation_id} "
                                                       f"(the contract lists {listed}){said}"))
                if status >= 400 and self.error_validator is not None:
                    found += self._media(self.error_media, headers, status)
                    parsed, value, more = self._json(self.error_validator, body)
                    found += more
            else:
                if expected and 400 <= status < 500 and status != expected:
                    found.append(Finding("response", None, f"status {status} where the contract answers {expected} "
                                                           f"to this request ({refused[0].message})"))
                media = declared.content_type
                if media is None:
                    if body:
                        found.append(Finding("response", None, f"the contract declares no body for status {status} "
                                                               f"of {op.operation_id}; the answer has {len(body)} bytes"))
                else:
                    found += self._media(media, headers, status)
                    if _is_json(media):
                        parsed, value, more = self._json(self.validators[(op.operation_id, status)], body)
                        found += more
        found += self._request_id(headers)
        return Checked(op, tuple(_unique(found)), parsed, value)

    def request(self, op: Operation, params: Mapping[str, str], req: MockRequest) -> tuple[int | None, list[Violation]]:
        """Every way the request breaks the contract, in the engine's order, and the status the
        contract answers it with (None for a valid request)."""
        found: list[tuple[int, Violation]] = []
        if not has_credentials(op, req.headers, None, req.query):
            found.append((401, Violation(UNAUTHORISED, None, self.engine.auth_hints[op.operation_id])))
        body = op.request_body
        if body is not None and not req.body and not body.required:
            body = None  # an optional body that was not sent
        check_schema = False
        if body is not None:
            if not media_type_accepted(body.content_type, req.headers.get("content-type")):
                found.append((400, Violation(UNSUPPORTED_MEDIA_TYPE, "Content-Type",
                                             f"Content-Type must be {body.content_type}")))
            if body.json:
                ok, value = req.json()
                if not ok:
                    found.append((400, Violation(UNABLE_TO_PROCESS, None, "The body is not valid JSON (UTF-8)")))
                elif body.schema.get("type") == "object" and not isinstance(value, dict):
                    found.append((400, Violation(UNABLE_TO_PROCESS, None, "The body must be a JSON object")))
                else:
                    check_schema = True
        for location, declared, values in (("path", op.path_params, params), ("query", op.query_params, req.query),
                                           ("header", op.header_params, req.headers),
                                           ("cookie", op.cookie_params, None)):
            if declared:
                found += [(400, v) for v in parameter_violations(
                    declared, values if values is not None else cookies(req.headers), location)]
        if check_schema:
            found += [(400, v) for v in body_violations(op, req.json()[1])]
        return (found[0][0] if found else None), [v for _, v in found]

    def _media(self, expected: str | None, headers: Mapping[str, str], status: int) -> list[Finding]:
        """The answer's media type must be the one the contract gives (parameters aside)."""
        actual = headers.get("content-type")
        media = actual.split(";", 1)[0].strip().lower() if actual else ""
        if expected is None or media == expected.lower():
            return []
        sent = f"not {media}" if media else "but the answer has no Content-Type"
        return [Finding("response", "Content-Type", f"Content-Type must be {expected} for status {status}, {sent}")]

    @staticmethod
    def _json(validator: Validator, body: bytes | None) -> tuple[bool, Any, list[Finding]]:
        if body is None:  # a content coding the proxy cannot undo: nothing to say about the body
            return False, None, []
        if not body:
            return False, None, [Finding("response", None, "the body is empty; the contract gives it a schema")]
        ok, value = parse_json(body)
        if not ok:
            return False, None, [Finding("response", None, "the body is not valid JSON")]
        if validator.is_valid(value):
            return True, value, []
        errors = sorted(validator.iter_errors(value), key=lambda e: [str(p) for p in e.absolute_path])
        found = [Finding("response", v.field, v.message) for e in errors for v in violations_of(e)]
        # Missing properties first, as the mock's own answers list them.
        found.sort(key=lambda f: not f.message.endswith(" is required"))
        return True, value, found

    def _request_id(self, headers: Mapping[str, str]) -> list[Finding]:
        rid = self.request_id
        if rid is None:
            return []
        value = headers.get(rid.header.lower())
        if value is None:
            return [Finding("response", rid.header, f"the answer carries no {rid.header} header")]
        rest = value[len(rid.prefix):]
        if not (value.startswith(rid.prefix) and len(rest) == rid.length and rest.isascii() and rest.isalnum()):
            return [Finding("response", rid.header,
                            f"{rid.header} must be {rid.prefix} followed by {rid.length} letters and digits")]
        return []


def _is_json(media: str) -> bool:
    media = media.lower()
    return media == "application/json" or media.endswith("+json")


def _unique(found: Iterable[Finding]) -> list[Finding]:
    return list(dict.fromkeys(found))


def violations_header(found: Sequence[Finding], limit: int = VIOLATIONS_HEADER_LIMIT) -> str:
    """Compact ASCII JSON of the findings, at most ``limit`` bytes; when they do not all fit, as
    many as fit and a last item saying how many were left out."""
    items = [json.dumps(f.as_dict(), separators=(",", ":")) for f in found]
    whole = "[" + ",".join(items) + "]"
    if len(whole) <= limit:
        return whole
    size = 1  # "["
    kept = 0
    for item in items:
        note = _left_out(len(items) - kept - 1)
        if size + len(item) + 1 + len(note) + 1 > limit:
            break
        size += len(item) + 1
        kept += 1
    return "[" + ",".join([*items[:kept], _left_out(len(items) - kept)]) + "]"


def _left_out(count: int) -> str:
    return json.dumps({"location": None, "field": None, "omitted": count,
                       "message": f"{count} more violation(s) left out; GET /__mock/violations lists every one"},
                      separators=(",", ":"))


# ---------------------------------------------------------------- the upstream


class UpstreamFailure(Exception):
    """The upstream gave no answer to pass on; ``str()`` names it and says what went wrong."""


class Upstream:
    """The one base URL the proxy calls. Only the path and query of a request are added to it."""

    def __init__(self, url: str) -> None:
        try:
            parsed = URL(url)
        except (ValueError, TypeError):
            parsed = None
        if parsed is not None and (parsed.raw_user or parsed.raw_password):
            raise ValueError("--upstream must not carry credentials: the proxy passes each client's own")
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError(f"--upstream must be an absolute http or https URL such as https://api.example.com, "
                             f"not {url!r}")
        if parsed.raw_query_string or parsed.raw_fragment:
            raise ValueError("--upstream must not have a query or fragment; requests bring their own query")
        self.origin = str(parsed.origin())
        self.base_path = parsed.raw_path.rstrip("/")
        self.scheme, self.host, self.port = parsed.scheme, parsed.host, parsed.port
        self.name = self.origin + self.base_path  # how messages name it

    def target(self, raw_path: str, raw_query: str) -> URL | None:
        """The URL for a request's path and query, or None when that is not a path on the upstream."""
        if not raw_path.startswith("/"):
            return None
        url = URL(self.origin + self.base_path + raw_path + (f"?{raw_query}" if raw_query else ""), encoded=True)
        if (url.scheme, url.host, url.port) != (self.scheme, self.host, self.port):
            return None
        return url


@dataclass(frozen=True, slots=True)
class Answer:
    """The upstream's answer, as received (``body`` still in its content coding)."""

    status: int
    reason: str | None
    headers: CIMultiDictProxy[str]
    body: bytes

    def lower_headers(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, value in self.headers.items():
            out.setdefault(name.lower(), value)
        return out

    def decoded(self) -> bytes | None:
        """The body without its content coding; None for a coding the proxy cannot undo."""
        coding = self.headers.get("Content-Encoding", "").strip().lower()
        if coding in ("", "identity"):
            return self.body
        try:
            if coding in ("gzip", "x-gzip"):
                return _inflate(self.body, 16 + zlib.MAX_WBITS)
            if coding == "deflate":
                try:
                    return _inflate(self.body, zlib.MAX_WBITS)
                except zlib.error:  # raw deflate, as some servers send it
                    return _inflate(self.body, -zlib.MAX_WBITS)
        except zlib.error:
            return None
        return None


def _why(exc: OSError) -> str:
    """What the system says went wrong ("connection refused"), without the addresses asyncio adds."""
    if exc.errno:
        return os.strerror(exc.errno).lower()
    return (exc.strerror or type(exc).__name__).lower()


def _inflate(data: bytes, wbits: int) -> bytes:
    inflater = zlib.decompressobj(wbits)
    return inflater.decompress(data, UPSTREAM_BODY_LIMIT)


def forwarded(headers: Iterable[tuple[str, str]], connection: Sequence[str], drop: frozenset[str]) -> CIMultiDict[str]:
    """Headers without the hop-by-hop ones (and those the Connection header names)."""
    named = {token.strip().lower() for value in connection for token in value.split(",")}
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in headers:
        low = name.lower()
        if low not in drop and low not in named:
            out.add(name, value)
    return out


class Proxy:
    """The upstream, its client session, the checks and the recorder of one proxy app."""

    def __init__(self, mock: Mock, upstream: Upstream, timeout_s: float, recorder: Recorder | None) -> None:
        self.mock = mock
        self.upstream = upstream
        self.timeout_s = timeout_s
        self.recorder = recorder
        self.check = ContractCheck(mock.engine)
        self.session: aiohttp.ClientSession | None = None
        self._flushes: set[asyncio.Task[None]] = set()

    async def open(self) -> None:
        self.session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.timeout_s),
            auto_decompress=False,  # the answer goes back as it came
            cookie_jar=aiohttp.DummyCookieJar(),  # one client's cookies are never sent for another
            trust_env=False,  # no proxy from the environment: only the upstream given
        )

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
        if self._flushes:
            await asyncio.gather(*self._flushes, return_exceptions=True)
        if self.recorder is not None:
            await self._flush()

    async def forward(self, method: str, url: URL, headers: CIMultiDict[str], body: bytes) -> Answer:
        assert self.session is not None, "the proxy app is not running"
        name = self.upstream.name
        try:
            async with self.session.request(method, url, headers=headers, data=body or None,
                                            allow_redirects=False, skip_auto_headers=_SKIP_AUTO) as resp:
                raw = await read_up_to(resp.content, UPSTREAM_BODY_LIMIT)
                if raw is None:
                    raise UpstreamFailure(f"The upstream {name} answered more than {UPSTREAM_BODY_LIMIT} bytes, "
                                          f"more than the proxy passes on")
                return Answer(resp.status, resp.reason, resp.headers, raw)
        except UpstreamFailure:
            raise
        except (asyncio.TimeoutError, TimeoutError):
            raise UpstreamFailure(f"The upstream {name} did not answer within {self.timeout_s:g} s") from None
        except aiohttp.ClientConnectorDNSError:
            raise UpstreamFailure(f"The upstream {name} cannot be reached: its host name does not resolve") from None
        except aiohttp.ClientConnectorError as exc:
            raise UpstreamFailure(f"The upstream {name} cannot be reached: {_why(exc.os_error)}") from None
        except aiohttp.ServerDisconnectedError:
            raise UpstreamFailure(f"The upstream {name} closed the connection without answering") from None
        except aiohttp.ClientPayloadError:
            raise UpstreamFailure(f"The upstream {name} closed the connection in the middle of its answer") from None
        except aiohttp.ClientResponseError:
            raise UpstreamFailure(f"The upstream {name} sent an answer that is not valid HTTP") from None
        except aiohttp.ClientOSError as exc:
            raise UpstreamFailure(f"The connection to the upstream {name} failed: {_why(exc)}") from None
        except aiohttp.ClientError as exc:
            raise UpstreamFailure(f"The exchange with the upstream {name} failed ({type(exc).__name__})") from None

    def record(self, req: MockRequest, status: int, checked: Checked) -> None:
        """Hand the answer to the recorder; a new rule is written off the event loop."""
        if self.recorder is None or checked.operation is None:
            return
        if self.recorder.add(checked.operation, req, status, checked.parsed, checked.value, checked.findings):
            task = asyncio.get_running_loop().create_task(self._flush())
            self._flushes.add(task)
            task.add_done_callback(self._flushes.discard)

    async def _flush(self) -> None:
        assert self.recorder is not None
        try:
            await self.recorder.flush()
        except OSError as exc:  # a full disk must not stop the proxy; the next rule tries again
            log.error("cannot write the recording %s: %s", self.recorder.path, exc.strerror or exc)


PROXY = web.AppKey("mockserver-proxy", Proxy)


def create_proxy_app(settings: Settings | None = None, *, upstream: str, record: Path | str | None = None,
                     upstream_timeout: float = DEFAULT_UPSTREAM_TIMEOUT_S, record_name: str = "recorded",
                     mock: Mock | None = None, **changes: Any) -> web.Application:
    """An aiohttp Application that forwards to ``upstream`` and checks each exchange against the contract.

    ``settings`` (or ``changes``, :class:`~mockserver.settings.Settings` fields) choose the
    contract and the limits; ``record`` is a directory to write the answers to as the scenario
    ``record_name``. Raises ValueError for an upstream or a recording that cannot be used.
    """
    target = Upstream(upstream)
    if not upstream_timeout > 0:
        raise ValueError("--upstream-timeout must be a positive number of seconds")
    if mock is None:
        mock = build_mock(settings, **changes)
    elif changes or settings is not None:
        raise TypeError("give either a built mock or settings, not both")
    recorder = None
    if record is not None:
        recorder = Recorder(mock.contract, Path(record), record_name, secrets=mock.journal.secrets,
                            seed=mock.settings.seed, source=target.name)
    proxy = Proxy(mock, target, upstream_timeout, recorder)
    app = web.Application(client_max_size=mock.engine.options.max_body_bytes,
                          middlewares=[guards(mock.settings.cors_allow_origins)])
    app[MOCK] = mock
    app[PROXY] = proxy
    app[admin.PROXY_MODE] = True
    admin.register(app, mock.settings.admin_token)
    app.router.add_route("*", r"/{tail:[\s\S]*}", handle)
    app.cleanup_ctx.append(_session)
    return app


async def _session(app: web.Application) -> AsyncIterator[None]:
    proxy = app[PROXY]
    await proxy.open()
    yield
    await proxy.close()
    await app[MOCK].close()


async def handle(request: web.Request) -> web.StreamResponse:
    """Every request that is not an admin route: forward, check, journal, record, answer."""
    mock = request.app[MOCK]
    proxy = request.app[PROXY]
    options = mock.engine.options
    header = mock.contract.request_id.header
    generation = mock.epoch.value
    started = time.perf_counter()
    received_at = time.time()
    req = await incoming(request, mock, generation)
    if isinstance(req, web.Response):
        return req
    too_large = req.body_too_large
    routed = mock.engine.route(req.method, req.path)
    operation = None if isinstance(routed, ApiProblem) else routed[0].operation_id
    url = proxy.upstream.target(request.rel_url.raw_path, request.rel_url.raw_query_string)
    failed: ApiProblem | None = None
    if too_large:
        failed = problem(400, message=f"The request body is larger than the limit of {options.max_body_bytes} bytes")
    elif url is None:
        failed = problem(400, message="The request target must be a path (origin-form or absolute-form)")
    if failed is None:
        assert url is not None
        try:
            answer = await proxy.forward(req.method, url, forwarded(request.headers.items(),
                                                                     request.headers.getall("Connection", []),
                                                                     _NOT_FORWARDED), req.body)
        except UpstreamFailure as exc:
            log.warning("%s %s: %s", req.method, req.path, exc)
            failed = problem(502, message=str(exc))
    if failed is not None:
        resp = mock.engine.error_response(failed)
        resp.operation = operation
        resp.close = too_large
        await _finish(mock, req, resp, received_at, started, generation, ())
        return to_http(resp, header)
    try:
        checked = proxy.check.exchange(req, routed, answer.status, answer.lower_headers(), answer.decoded())
    except Exception:  # a bug of ours must not cost the client the upstream's answer
        log.exception("could not check the answer to %s %s", req.method, req.path)
        checked = Checked(None if isinstance(routed, ApiProblem) else routed[0], (), False, None)
    rid = answer.headers.get(header) or mock.engine.unseeded_request_id()
    await _finish(mock, req, MockResponse(answer.status, b"", rid, operation=operation), received_at, started,
                  generation, checked.findings)
    try:
        proxy.record(req, answer.status, checked)
    except Exception:
        log.exception("could not record the answer to %s %s", req.method, req.path)
    out = web.Response(status=answer.status, reason=answer.reason, body=answer.body,
                       headers=forwarded(answer.headers.items(), answer.headers.getall("Connection", []),
                                         _NOT_RETURNED))
    if checked.findings:
        scrub = mock.journal.secrets.scrub
        shown = [Finding(f.location, None if f.field is None else scrub(f.field), scrub(f.message))
                 for f in checked.findings]
        out.headers[VIOLATIONS_HEADER] = violations_header(shown)
    return out


async def _finish(mock: Mock, req: MockRequest, resp: MockResponse, received_at: float, started: float,
            generation: int, findings: Sequence[Finding]) -> None:
    """Journal the exchange (unless a reset came in between), then log it: the journal learns the
    request's credentials first, so the log line can never show them."""
    duration_ms = (time.perf_counter() - started) * 1000
    if mock.epoch.current(generation):
        await mock.journal.record(req, resp, received_at, duration_ms,
                            violations=[(f.location, f.field, f.message) for f in findings])
    if ACCESS.enabled():
        ACCESS.line(f"{req.method} {req.path} {resp.status} {duration_ms:.1f}ms {resp.request_id} "
                    f"violations={len(findings)}")


__all__ = ["create_proxy_app", "ContractCheck", "Finding", "Checked", "Upstream", "UpstreamFailure",
           "VIOLATIONS_HEADER", "violations_header"]
