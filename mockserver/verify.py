"""``mockserver verify``: does the real API still answer the way the contract (and so the mock) says?

A probe plan is derived from the compiled contract: per operation a valid request (generated from
its schemas) and one request per error class the contract lets us make (no credentials, a wrong
content type, a missing required field, an invalid field, an unknown id). Every probe goes to the
upstream and to an in-process mock of the same contract; the two answers are compared on what a
client depends on: the status, the error members the contract's error shape fills with the type,
code and field, whether each answer conforms to the schema of its status, and the promised
request-id header. Everything the run created upstream is deleted at the end, whatever happened.

Nothing here names a field of a contract: where credentials go, which body fields are required,
which operation creates, reads or deletes what, and which error members to compare are all read
from :class:`~mockserver.contract.Contract`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import socket
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, TextIO
from urllib.parse import quote, urlsplit

import aiohttp
from jsonschema.exceptions import ValidationError, best_match

from .app import create_app
from .contract import Contract, Operation, Parameter, Validator, compile_validator
from .contract.model import opened
from .errors import LoadError, LoadErrors
from .generation import GenerationError, Generator, compile_maker
from .mock import build_mock, contract_for
from .server import new_event_loop, start_site
from .settings import Settings

__all__ = ["add_parser", "run", "Probe", "plan"]

VALID = "valid"
NO_CREDENTIALS = "no credentials"
WRONG_CONTENT_TYPE = "wrong content type"
MISSING_REQUIRED = "missing required field"
BROKEN_FIELD = "invalid field"
UNKNOWN_ID = "unknown id"

SAME, DIFFERS, SKIPPED = "same", "DIFFERS", "skipped"

# The placeholders of an error shape's template whose values a client branches on.
_COMPARED_PLACEHOLDERS = ("$type", "$code", "$field")
# Values that break a property's schema, tried in order; the first the schema rejects is sent.
_WRONG_VALUES: tuple[Any, ...] = (12345, "?", True, {"?": 1}, [])
_WRONG_QUERY_VALUES = ("?", "-1", "0")
_MAX_ANSWER_BYTES = 1024 * 1024
_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "an integer",
               float: "a number", type(None): "null"}


class _Unreachable(Exception):
    """The upstream refused or never accepted a connection: nothing to compare with."""


# ------------------------------------------------------------------ command line

def add_parser(subparsers: Any, contract_options: Callable[[argparse.ArgumentParser], None]) -> argparse.ArgumentParser:
    """Add ``verify`` to a CLI's subcommands, with the CLI's own contract options; returns its parser."""
    parser = subparsers.add_parser(
        "verify", help="compare a live API with the mock of its contract; exit 1 when they differ",
        description="Run a probe plan derived from the contract against the upstream and against an "
                    "in-process mock of the same contract, and compare the answers. Exit 0 when they agree, "
                    "1 when any probe differs, 2 when the upstream cannot be reached or the input is bad.")
    parser.add_argument("--upstream", required=True, metavar="URL",
                        help="base URL of the API to check (its sandbox), such as https://api.sandbox.example")
    credentials = parser.add_mutually_exclusive_group()
    credentials.add_argument("--api-key", default=None, metavar="KEY",
                             help="API key for the upstream (sent where the contract's API-key scheme says)")
    credentials.add_argument("--token", default=None, metavar="TOKEN",
                             help="bearer token for the upstream, instead of an API key")
    contract_options(parser)
    parser.add_argument("--only", action="append", default=[], metavar="OPERATION_ID",
                        help="probe only this operation (repeatable); a create it needs an id from still runs, "
                             "as setup")
    parser.add_argument("--junit", type=Path, default=None, metavar="FILE",
                        help="also write the results as JUnit XML, one test case per probe")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the probe plan and call nothing (credentials are not needed)")
    parser.add_argument("--timeout", type=float, default=10.0, metavar="S",
                        help="seconds each request may take before it counts as unanswered (default 10; "
                             "tests use a short one)")
    parser.add_argument("--seed", type=int, default=1, metavar="N",
                        help="seed of the generated requests and of the mock's answers (default 1)")
    return parser


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Run ``verify`` as parsed by :func:`add_parser`; returns the exit status."""
    secrets = [s for s in (args.api_key, args.token) if s]

    def scrub(text: str) -> str:
        for secret in secrets:
            text = text.replace(secret, "[redacted]")
        return text

    def fail(message: str) -> int:
        print(scrub(f"mockserver verify: error: {message}"), file=err)
        return 2

    problem = _upstream_problem(args.upstream)
    if problem is not None:
        return fail(problem)
    if args.timeout <= 0:
        return fail(f"--timeout must be a positive number of seconds, not {args.timeout:g}")
    if not args.dry_run and not secrets:
        return fail("give the upstream's credentials with --api-key KEY or --token TOKEN "
                    "(or use --dry-run to see the plan)")
    try:
        contract = contract_for(Settings(openapi=args.openapi, overlays=args.overlay))
    except (LoadError, LoadErrors) as exc:
        for error in (exc.errors if isinstance(exc, LoadErrors) else [exc]):
            print(scrub(f"mockserver verify: error: {error}"), file=err)
        return 2
    known = {op.operation_id for op in contract.operations}
    unknown = [name for name in args.only if name not in known]
    if unknown:
        return fail(f"--only {unknown[0]}: no such operation in the contract; known: {', '.join(sorted(known))}")
    kind = "api_key" if args.api_key else "token" if args.token else None
    the_plan = plan(contract, args.seed, args.only)
    if args.dry_run:
        for line in describe(the_plan, kind):
            print(scrub(line), file=out)
        return 0
    credential = (kind or "", secrets[0])
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        report = runner.run(_verify(contract, the_plan, args.upstream, credential, args.timeout, args.seed))
    if report.unreachable is None or report.results:  # unreachable from the start: the one line below says it all
        for line in report.lines():
            print(scrub(line), file=out)
    for line in report.warnings:
        print(scrub(f"mockserver verify: warning: {line}"), file=err)
    if args.junit is not None:
        try:
            args.junit.parent.mkdir(parents=True, exist_ok=True)
            args.junit.write_bytes(report.junit(scrub))
        except OSError as exc:
            print(scrub(f"mockserver verify: error: cannot write {args.junit}: {exc.strerror or exc}"), file=err)
            return 2
    if report.unreachable is not None:
        return fail(report.unreachable)
    return 1 if report.differing else 0


def _upstream_problem(url: str) -> str | None:
    """Why ``url`` cannot be an upstream, or None."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        return f"--upstream {url!r} is not a URL: {exc}"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"--upstream must be an absolute http or https URL such as https://api.example.com, not {url!r}"
    if parts.query or parts.fragment:
        return f"--upstream is a base URL: leave out the query and fragment of {url!r}"
    return None


# ------------------------------------------------------------------ the plan

@dataclass(frozen=True)
class Probe:
    """One request of the plan, sent alike to the upstream and to the mock.

    ``key`` is the path parameter that takes the id of a stored ``collection`` resource: the id
    the create of that collection answered on the same side, or ``unknown_id`` when set.
    """

    op: Operation
    kind: str
    detail: str = ""
    path: Mapping[str, str] = field(default_factory=dict)
    key: str | None = None
    collection: str | None = None
    unknown_id: str | None = None
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None
    credentials: bool = True
    setup: bool = False  # runs (to get an id) but is not compared: --only left its operation out

    @property
    def label(self) -> str:
        return f"{self.op.operation_id} {self.name}"

    @property
    def name(self) -> str:
        return self.kind + (f" ({self.detail})" if self.detail else "")


@dataclass(frozen=True)
class Plan:
    probes: tuple[Probe, ...]
    cleanup: Mapping[str, Probe]  # collection -> the valid delete request (its key filled in per resource)
    creators: Mapping[str, str]  # collection -> the operation whose answer gives its ids
    notes: tuple[str, ...]  # operations or probes the contract gives no way to make
    contract: Contract
    seed: int


def plan(contract: Contract, seed: int = 1, only: Sequence[str] = ()) -> Plan:
    """The probes for ``contract`` (for the operations in ``only``, when given), in the order they run:
    creates first, then what needs no stored resource, then what does, deletes last."""
    return _Planner(contract, seed).build(only)


def _stored(op: Operation) -> tuple[str, str] | None:
    """(collection, path parameter) of the stored resource an operation acts on, or None."""
    behaviour = op.behaviour
    if behaviour is not None and behaviour.key and behaviour.collection:
        return behaviour.collection, behaviour.key
    return op.parent


def _kind(op: Operation) -> str | None:
    return op.behaviour.kind if op.behaviour is not None else None


class _Planner:
    def __init__(self, contract: Contract, seed: int) -> None:
        self.contract = contract
        self.generator = Generator(seed)
        self.fresh = Generator()  # unseeded: an unknown id must be new on every run
        self.creates = {op.behaviour.collection: op for op in contract.operations
                        if _kind(op) == "create" and op.behaviour and op.behaviour.collection}
        self.deletes = {op.behaviour.collection: op for op in contract.operations
                        if _kind(op) == "delete" and op.behaviour and op.behaviour.collection and op.behaviour.key}
        self.notes: list[str] = []

    def build(self, only: Sequence[str]) -> Plan:
        def rank(op: Operation) -> int:
            if _kind(op) == "create":
                return 0
            if _stored(op) is None:
                return 1
            return 3 if _kind(op) == "delete" else 2

        chosen = [op for op in self.contract.operations if not only or op.operation_id in only]
        probes: list[Probe] = []
        needed: list[str] = []
        for op in sorted(chosen, key=rank):
            stored = _stored(op)
            if stored is not None and stored[0] not in needed:
                needed.append(stored[0])
            probes.extend(self.operation(op))
        chosen_ids = {op.operation_id for op in chosen}
        setup: list[Probe] = []
        for collection in needed:
            create = self.creates.get(collection)
            if create is None:
                self.notes.append(f"nothing in the contract creates {collection}: probes that need one are skipped")
            elif create.operation_id not in chosen_ids:
                made = self.valid(create)
                if isinstance(made, Probe):
                    setup.append(_changed(made, setup=True))
        cleanup: dict[str, Probe] = {}
        for collection, op in self.deletes.items():
            made = self.valid(op, note=False)
            if isinstance(made, Probe):
                cleanup[collection] = made
        creators = {collection: op.operation_id for collection, op in self.creates.items()}
        return Plan(tuple(setup + probes), cleanup, creators, tuple(self.notes), self.contract,
                    self.generator.seed or 0)

    def operation(self, op: Operation) -> list[Probe]:
        valid = self.valid(op)
        if not isinstance(valid, Probe):
            return []
        errors: list[Probe] = []
        if op.security:
            errors.append(_changed(valid, kind=NO_CREDENTIALS, credentials=False))
        body = op.request_body
        value = json.loads(valid.body) if valid.body is not None and body is not None and body.json else None
        if value is not None and body is not None:
            wrong = "application/octet-stream" if body.content_type == "text/plain" else "text/plain"
            errors.append(_changed(valid, kind=WRONG_CONTENT_TYPE, detail=wrong,
                                   headers={**_without_content_type(valid.headers), "Content-Type": wrong}))
            errors.extend(self.body_errors(op, valid, value))
        else:
            errors.extend(self.query_errors(op, valid))
        stored = _stored(op)
        if stored is not None:
            errors.append(_changed(valid, kind=UNKNOWN_ID, unknown_id=self.fresh_id(*stored)))
        # A delete's error probes need the resource it would delete: they run before it.
        return [*errors, valid] if _kind(op) == "delete" else [valid, *errors]

    def valid(self, op: Operation, note: bool = True) -> Probe | None:
        stored = _stored(op)
        try:
            path = {name: self.text(param) for name, param in op.path_params.items()
                    if stored is None or name != stored[1]}
            query = {name: self.text(param) for name, param in op.query_params.items() if param.required}
            headers = {name: self.text(param) for name, param in op.header_params.items() if param.required}
            cookies = [f"{name}={self.text(param)}" for name, param in op.cookie_params.items() if param.required]
            if cookies:
                headers["Cookie"] = "; ".join(cookies)
            body: bytes | None = None
            request_body = op.request_body
            if request_body is not None and request_body.required:
                if not request_body.json:
                    raise GenerationError(f"its {request_body.content_type} body cannot be generated")
                body = json.dumps(self.body(op)).encode()
                headers["Content-Type"] = request_body.content_type
        except GenerationError as exc:
            if note:
                self.notes.append(f"{op.operation_id} is not probed: {exc}")
            return None
        return Probe(op, VALID, path=path, key=stored[1] if stored else None,
                     collection=stored[0] if stored else None, query=query, headers=headers, body=body)

    def text(self, param: Parameter) -> str:
        """A valid value of a parameter, written as it travels in a path, query or header."""
        value = compile_maker(param.schema, dynamic=False)(self.generator)
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, list):
            return ",".join(str(v) for v in value)
        return str(value)

    def body(self, op: Operation) -> Any:
        """A valid body, as a client would send it: no read-only properties, no optional nulls."""
        assert op.request_body is not None
        request_body = op.request_body
        value = compile_maker(request_body.schema, dynamic=False)(self.generator)
        props = request_body.schema.get("properties")
        if not isinstance(value, dict) or not isinstance(props, dict):
            return value
        required = set(request_body.schema.get("required") or ())
        trimmed = {name: v for name, v in value.items()
                   if name in required or not (v is None or _flag(props.get(name), "readOnly"))}
        return trimmed if request_body.validator.is_valid(trimmed) else value

    def body_errors(self, op: Operation, valid: Probe, value: Any) -> list[Probe]:
        assert op.request_body is not None
        schema, validator = op.request_body.schema, op.request_body.validator
        if not isinstance(value, dict):
            return []
        out: list[Probe] = []
        for name in schema.get("required") or ():
            if name in value:
                missing = {k: v for k, v in value.items() if k != name}
                if not validator.is_valid(missing):
                    out.append(_changed(valid, kind=MISSING_REQUIRED, detail=name, body=json.dumps(missing).encode()))
                    break
        props = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
        candidates = [*(schema.get("required") or ()), *(n for n in value if n not in (schema.get("required") or ())),
                      *(n for n in props if n not in value)]
        for name in candidates:
            for wrong in _WRONG_VALUES:
                broken = {**value, name: wrong}
                if not validator.is_valid(broken):
                    out.append(_changed(valid, kind=BROKEN_FIELD, detail=f"{name}: {_JSON_TYPES[type(wrong)]}",
                                        body=json.dumps(broken).encode()))
                    return out
        return out

    def query_errors(self, op: Operation, valid: Probe) -> list[Probe]:
        for name, param in op.query_params.items():
            for wrong in _WRONG_QUERY_VALUES:
                if not param.accepts(wrong):
                    return [_changed(valid, kind=BROKEN_FIELD, detail=f"query {name}={wrong}",
                                     query={**valid.query, name: wrong})]
        return []

    def fresh_id(self, collection: str, key: str) -> str:
        """A new id shaped like the ones the collection's create answers (so a provider that checks
        the shape of an id still looks it up), else like the key parameter's schema."""
        create = self.creates.get(collection)
        schemas: list[Any] = []
        if create is not None and create.behaviour is not None and create.behaviour.id_field:
            success = min((s for s in create.responses if 200 <= s < 300), default=None)
            props = create.responses[success].schema.get("properties") if success is not None else None
            if isinstance(props, dict):
                schemas.append(props.get(create.behaviour.id_field))
        for op in self.contract.operations:
            if _stored(op) == (collection, key) and key in op.path_params:
                schemas.append(op.path_params[key].schema)
                break
        for schema in schemas:
            if isinstance(schema, dict):
                try:
                    made = compile_maker(schema)(self.fresh)
                except GenerationError:
                    continue
                if isinstance(made, str) and made:
                    return made
        return self.fresh.token("", 24)


def _changed(probe: Probe, **changes: Any) -> Probe:
    return replace(probe, **changes)


def _without_content_type(headers: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() != "content-type"}


def _flag(schema: Any, key: str) -> bool:
    return isinstance(schema, dict) and schema.get(key) is True


def _target_path(probe: Probe, key_value: str | None) -> str:
    """The operation's path with the probe's values in it; a key not known yet stays ``{name}``."""
    values = dict(probe.path)
    if probe.key is not None and key_value is not None:
        values[probe.key] = key_value

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        return quote(values[name], safe="") if name in values else match.group(0)

    return re.sub(r"\{([^}]+)\}", fill, probe.op.path)


def describe(the_plan: Plan, credential_kind: str | None) -> list[str]:
    """The plan as lines, for ``--dry-run``."""
    compared = [p for p in the_plan.probes if not p.setup]
    operations = {p.op.operation_id for p in compared}
    lines = [f"plan: {len(compared)} probe(s) over {len(operations)} operation(s) of {the_plan.contract.title} "
             f"(seed {the_plan.seed}); --dry-run: nothing is called"]
    rows = []
    for probe in the_plan.probes:
        request = f"{probe.op.method} {_target_path(probe, probe.unknown_id)}"
        if probe.query:
            request += "?" + "&".join(f"{k}={v}" for k, v in probe.query.items())
        what = _what(probe, credential_kind, the_plan.creators)
        rows.append(("setup: " + probe.label if probe.setup else probe.label, request, what))
    widths = [max((len(r[i]) for r in rows), default=0) for i in range(2)]
    for label, request, what in rows:
        lines.append(f"  {label.ljust(widths[0])}  {request.ljust(widths[1])}  {what}".rstrip())
    for collection, probe in the_plan.cleanup.items():
        lines.append(f"cleanup: whatever the run creates in {collection} upstream is deleted with "
                     f"{probe.op.operation_id}, also when a probe fails")
    lines.extend(f"note: {note}" for note in the_plan.notes)
    return lines


def _what(probe: Probe, credential_kind: str | None, creators: Mapping[str, str]) -> str:
    parts = []
    if probe.key is not None and probe.unknown_id is None:
        source = creators.get(probe.collection or "")
        parts.append(f"{probe.key} = the id {source} answered" if source else f"{probe.key}: no create gives one")
    if probe.unknown_id is not None:
        parts.append(f"{probe.key} = a fresh id")
    if probe.body is not None:
        try:
            value = json.loads(probe.body)
        except ValueError:
            value = None
        media = next((v for k, v in probe.headers.items() if k.lower() == "content-type"), "no content type")
        shape = f"{len(value)} field(s)" if isinstance(value, dict) else "a value"
        parts.append(f"{media} body with {shape}")
    if not probe.credentials:
        parts.append("no credentials")
    elif probe.op.security:
        parts.append("with the bearer token" if credential_kind == "token" else
                     "with the API key" if credential_kind == "api_key" else "with the credentials")
    return "; ".join(parts)


# ------------------------------------------------------------------ running it

@dataclass
class Answer:
    """What one side answered to one probe: an HTTP answer, a failure, or why it was not sent."""

    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names
    body: Any = None
    is_json: bool = False
    failure: str | None = None  # what happened instead of an answer, as a sentence's end
    short: str = ""  # the same in a word or two, for the table
    skipped: str | None = None
    key: str | None = None  # the id the probe's path carried
    elapsed_s: float = 0.0


class _Side:
    """The upstream or the mock: where requests go, the ids its creates answered, what to clean up."""

    def __init__(self, name: str, base: str, session: aiohttp.ClientSession, credential: tuple[str, str],
                 timeout: float) -> None:
        self.name = name
        self.base = base.rstrip("/")
        self.session = session
        self.credential = credential
        self.timeout = timeout
        self.ids: dict[str, str] = {}
        self.created: list[tuple[str, str]] = []  # (collection, id), oldest first

    async def send(self, probe: Probe) -> Answer:
        key: str | None = None
        if probe.key is not None:
            key = probe.unknown_id or self.ids.get(probe.collection or "")
            if key is None:
                return Answer(skipped=f"no {probe.collection} id on the {self.name}: no create before it answered one")
        headers = dict(probe.headers)
        query = dict(probe.query)
        if probe.credentials and not self._credit(probe.op, headers, query):
            return Answer(skipped=f"the contract accepts no {'bearer token' if self.credential[0] == 'token' else 'API key'}"
                                  f" for {probe.op.operation_id}")
        started = time.perf_counter()
        try:
            async with self.session.request(probe.op.method, self.base + _target_path(probe, key),
                                            params=query or None, headers=headers, data=probe.body,
                                            allow_redirects=False) as resp:
                raw = await resp.content.read(_MAX_ANSWER_BYTES)
                answer = Answer(status=resp.status, headers={k.lower(): v for k, v in resp.headers.items()},
                                key=key)
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError, aiohttp.InvalidURL) as exc:
            raise _Unreachable(f"cannot reach the {self.name} at {self.base}: {_connect_reason(exc, self.timeout)}") from exc
        except (asyncio.TimeoutError, aiohttp.ServerTimeoutError):
            return Answer(failure=f"gave no answer within {self.timeout:g} s (--timeout)", short="no answer", key=key,
                          elapsed_s=time.perf_counter() - started)
        except aiohttp.ServerDisconnectedError:
            return Answer(failure="dropped the connection without answering", short="dropped", key=key,
                          elapsed_s=time.perf_counter() - started)
        except aiohttp.ClientPayloadError:
            return Answer(failure="cut the answer off halfway", short="cut off", key=key,
                          elapsed_s=time.perf_counter() - started)
        except aiohttp.ClientError as exc:
            return Answer(failure=f"failed: {exc.__class__.__name__}: {exc}", short="failed", key=key,
                          elapsed_s=time.perf_counter() - started)
        answer.elapsed_s = time.perf_counter() - started
        if raw:
            try:
                answer.body, answer.is_json = json.loads(raw), True
            except ValueError:
                answer.body = None
        return answer

    def _credit(self, op: Operation, headers: dict[str, str], query: dict[str, str]) -> bool:
        """Put the credential where one of the operation's security schemes takes it; False when none does."""
        if not op.security:
            return True
        kind, value = self.credential
        for scheme in op.security:
            if scheme.also:  # a combination of schemes needs more than the one credential we hold
                continue
            if kind == "api_key" and scheme.kind == "apiKey":
                if scheme.location == "query":
                    query[scheme.name] = value
                elif scheme.location == "cookie":
                    headers["Cookie"] = "; ".join(filter(None, (headers.get("Cookie"), f"{scheme.name}={value}")))
                else:
                    headers[scheme.name] = value
                return True
            if kind == "token" and scheme.kind == "bearer":
                headers[scheme.name] = f"Bearer {value}"
                return True
        return False

    def note(self, probe: Probe, answer: Answer) -> None:
        """Remember what the answer created (to reuse its id and to delete it) and what it deleted."""
        if answer.status is None or not 200 <= answer.status < 300:
            return
        behaviour = probe.op.behaviour
        if behaviour is None or behaviour.collection is None:
            return
        if behaviour.kind == "create" and behaviour.id_field and isinstance(answer.body, dict):
            made = answer.body.get(behaviour.id_field)
            if made is not None and made != "":
                self.created.append((behaviour.collection, str(made)))
                if probe.kind == VALID:
                    self.ids.setdefault(behaviour.collection, str(made))
        elif behaviour.kind == "delete" and answer.key is not None and probe.unknown_id is None:
            self.created = [c for c in self.created if c != (behaviour.collection, answer.key)]


def _connect_reason(exc: Exception, timeout: float) -> str:
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return f"no connection within {timeout:g} s"
    os_error = getattr(exc, "os_error", None)
    if isinstance(os_error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(os_error, socket.gaierror):
        return f"the host name does not resolve ({os_error.strerror or os_error})"
    return getattr(os_error, "strerror", None) or str(os_error or exc)


@dataclass
class Result:
    probe: Probe
    upstream: Answer
    mock: Answer
    verdict: str
    differences: list[str]


@dataclass
class Report:
    upstream_url: str
    contract: Contract
    seed: int
    results: list[Result] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    cleaned: list[str] = field(default_factory=list)
    notes: tuple[str, ...] = ()
    unreachable: str | None = None

    @property
    def differing(self) -> list[Result]:
        return [r for r in self.results if r.verdict == DIFFERS]

    def lines(self) -> list[str]:
        lines = [f"verify: {self.upstream_url} against the mock of {self.contract.title} (seed {self.seed})"]
        rows = [("PROBE", "UPSTREAM", "MOCK", "VERDICT")]
        rows += [(r.probe.label, _cell(r.upstream, self.contract), _cell(r.mock, self.contract), r.verdict)
                 for r in self.results]
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        for index, row in enumerate(rows):
            lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:3])) + "  " + row[3])
            if index:
                result = self.results[index - 1]
                lines.extend(f"    - {difference}" for difference in result.differences)
        lines.extend(f"note: {note}" for note in self.notes)
        lines.extend(f"cleanup: {line}" for line in self.cleaned)
        same = sum(r.verdict == SAME for r in self.results)
        skipped = sum(r.verdict == SKIPPED for r in self.results)
        summary = (f"{len(self.results)} probe(s): {same} same, {len(self.differing)} differ, {skipped} skipped")
        if self.unreachable is not None:
            summary += "; stopped: the upstream could not be reached"
        lines.append(summary)
        return lines

    def junit(self, scrub: Callable[[str], str]) -> bytes:
        suites = ET.Element("testsuites")
        suite = ET.SubElement(suites, "testsuite", name="mockserver verify", tests=str(len(self.results)),
                              failures=str(len(self.differing)), errors="1" if self.unreachable else "0",
                              skipped=str(sum(r.verdict == SKIPPED for r in self.results)),
                              time=f"{sum(r.upstream.elapsed_s for r in self.results):.3f}")
        ET.SubElement(ET.SubElement(suite, "properties"), "property", name="upstream", value=scrub(self.upstream_url))
        for r in self.results:
            case = ET.SubElement(suite, "testcase", classname=f"verify.{r.probe.op.operation_id}",
                                 name=scrub(r.probe.name), time=f"{r.upstream.elapsed_s:.3f}")
            if r.verdict == DIFFERS:
                failure = ET.SubElement(case, "failure", message=scrub(r.differences[0]), type="difference")
                failure.text = scrub("\n".join([f"upstream: {_cell(r.upstream, self.contract)}",
                                                f"mock: {_cell(r.mock, self.contract)}", *r.differences]))
            elif r.verdict == SKIPPED:
                ET.SubElement(case, "skipped", message=scrub(r.differences[0] if r.differences else "skipped"))
        if self.unreachable is not None:
            case = ET.SubElement(suite, "testcase", classname="verify", name="reach the upstream")
            ET.SubElement(case, "error", message=scrub(self.unreachable), type="unreachable")
            suite.set("tests", str(len(self.results) + 1))
        extra = [*(f"note: {n}" for n in self.notes), *(f"cleanup: {c}" for c in self.cleaned),
                 *(f"warning: {w}" for w in self.warnings)]
        if extra:
            ET.SubElement(suite, "system-out").text = scrub("\n".join(extra))
        ET.indent(suites)
        return ET.tostring(suites, encoding="utf-8", xml_declaration=True) + b"\n"


async def _verify(contract: Contract, the_plan: Plan, upstream_url: str, credential: tuple[str, str],
                  timeout: float, seed: int) -> Report:
    report = Report(upstream_url, contract, seed, notes=the_plan.notes)
    checker = _Checker(contract)
    mock = build_mock(Settings(scenarios_dir=None, seed=seed, api_keys=frozenset({credential[1]}), hot_reload=False),
                      contract=contract)
    app = create_app(mock=mock)
    runner, port = await start_site(app, "127.0.0.1", 0, shutdown_grace=1.0)
    client_timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=timeout)
    try:
        async with aiohttp.ClientSession(timeout=client_timeout, cookie_jar=aiohttp.DummyCookieJar(),
                                         auto_decompress=True) as session:
            upstream = _Side("upstream", upstream_url, session, credential, timeout)
            local = _Side("mock", f"http://127.0.0.1:{port}", session, credential, timeout)
            try:
                for probe in the_plan.probes:
                    answers = await asyncio.gather(upstream.send(probe), local.send(probe), return_exceptions=True)
                    for answer in answers:
                        if isinstance(answer, BaseException):
                            raise answer
                    up, mk = answers  # type: ignore[misc]
                    upstream.note(probe, up)
                    local.note(probe, mk)
                    if probe.setup:
                        for side, answer in ((upstream, up), (local, mk)):
                            if answer.status is None or not 200 <= answer.status < 300:
                                report.warnings.append(f"setup {probe.label} on the {side.name}: "
                                                       f"{_cell(answer, contract)}")
                        continue
                    report.results.append(checker.compare(probe, up, mk))
            except _Unreachable as exc:
                report.unreachable = str(exc)
            finally:
                # Whatever happened above, what this run created upstream does not outlive it.
                await _clean_up(upstream, the_plan, report)
    finally:
        await runner.cleanup()
    return report


async def _clean_up(side: _Side, the_plan: Plan, report: Report) -> None:
    deleted: dict[str, int] = {}
    for collection, made in list(side.created):
        template = the_plan.cleanup.get(collection)
        if template is None:
            report.warnings.append(f"{collection} {made} stays on the {side.name}: the contract has no delete for it")
            continue
        probe = _changed(template, unknown_id=made)
        try:
            answer = await side.send(probe)
        except _Unreachable as exc:
            report.warnings.append(f"{collection} {made} may stay on the {side.name}: {exc}")
            continue
        if answer.status is not None and (200 <= answer.status < 300 or answer.status == 404):
            side.created.remove((collection, made))
            if answer.status != 404:
                deleted[collection] = deleted.get(collection, 0) + 1
        else:
            why = answer.failure or answer.skipped or f"status {answer.status}"
            report.warnings.append(f"could not delete {collection} {made} on the {side.name} "
                                   f"({template.op.operation_id}): {why}")
    for collection, count in deleted.items():
        report.cleaned.append(f"deleted what the run created upstream: {count} in {collection}")


# ------------------------------------------------------------------ comparing

class _Checker:
    """Compares two answers to one probe, and checks each against the contract."""

    def __init__(self, contract: Contract) -> None:
        self.contract = contract
        template = contract.error_shape.template or {}
        self.members = [name for name, value in template.items() if value in _COMPARED_PLACEHOLDERS]
        rid = contract.request_id
        # The mock writes a request id into every answer; only an id the contract names is a promise.
        self.request_id = None if not rid.declared else (
            rid.header.lower(), re.compile(re.escape(rid.prefix) + "[A-Za-z0-9]{%d}" % rid.length), rid)
        self.validators: dict[tuple[str, int], Validator] = {}

    def compare(self, probe: Probe, up: Answer, mk: Answer) -> Result:
        if up.skipped or mk.skipped:
            return Result(probe, up, mk, SKIPPED, [f"{up.skipped or mk.skipped}"])
        differences: list[str] = []
        if up.failure or mk.failure:
            if up.failure and mk.failure:
                differences.append(f"neither answered: the upstream {up.failure}, the mock {mk.failure}")
            elif up.failure:
                differences.append(f"the upstream {up.failure}; the mock answered {mk.status}")
            else:
                differences.append(f"the mock {mk.failure}; the upstream answered {up.status}")
        else:
            if up.status != mk.status:
                differences.append(f"status {up.status} vs {mk.status} (upstream vs mock)")
            if up.status is not None and mk.status is not None and up.status >= 400 and mk.status >= 400:
                for name in self.members:
                    theirs, ours = _member(up.body, name), _member(mk.body, name)
                    if theirs != ours:
                        differences.append(f"{name} {theirs} vs {ours} (upstream vs mock)")
        agreed = up.status == mk.status
        for side, answer in (("upstream", up), ("mock", mk)):
            differences.extend(f"{side} {finding}" for finding in self.conformance(probe.op, answer, agreed))
        return Result(probe, up, mk, DIFFERS if differences else SAME, differences)

    def conformance(self, op: Operation, answer: Answer, agreed: bool = False) -> list[str]:
        """How an answer breaks the contract of its operation: status, media type, schema, request id.

        A status the document does not list is only worth saying when the two sides disagree:
        where both answer it, it is the mock's own default for an answer the document leaves out
        (a 401 of a document that lists no errors).
        """
        if answer.status is None:
            return []
        findings: list[str] = []
        response = op.responses.get(answer.status)
        if response is None and agreed:
            pass
        elif response is None:
            listed = ", ".join(str(s) for s in sorted(op.responses))
            media = answer.headers.get("content-type", "").split(";", 1)[0].strip().lower()
            findings.append(f"answered {answer.status}" + (f" ({media})" if media else "")
                            + f", which the contract does not list for {op.operation_id} ({listed})")
        else:
            media = answer.headers.get("content-type", "").split(";", 1)[0].strip().lower()
            expected = (response.content_type or "").lower()
            if expected and media != expected:
                findings.append(f"content type is {media or 'missing'}, the contract says {expected}")
            if expected and "json" in expected:
                if not answer.is_json:
                    findings.append(f"body is not JSON, the contract says {expected}")
                else:
                    error = best_match(self.validator(op, answer.status).iter_errors(answer.body))
                    if error is not None:
                        where, what = _explain(error)
                        findings.append(f"answer breaks the {answer.status} schema at {where}: {what}")
        if self.request_id is not None:
            header, pattern, rid = self.request_id
            value = answer.headers.get(header)
            if value is None:
                findings.append(f"answer has no {rid.header} header")
            elif not pattern.fullmatch(value):
                findings.append(f"{rid.header} is not {rid.prefix} + {rid.length} letters and digits")
        return findings

    def validator(self, op: Operation, status: int) -> Validator:
        """The schema of an answer with unknown properties allowed: a provider may add a field
        (clients ignore what they do not know); dropping or changing one is what breaks them."""
        key = (op.operation_id, status)
        found = self.validators.get(key)
        if found is None:
            found = self.validators[key] = compile_validator(opened(op.responses[status].schema, one_of_as_any=True)[0])
        return found


def _member(body: Any, name: str) -> str:
    if not isinstance(body, dict):
        return "(no JSON object)"
    if name not in body:
        return "(missing)"
    value = body[name]
    return "null" if value is None else str(value)


def _explain(error: ValidationError) -> tuple[str, str]:
    """Where an answer breaks its schema, and how, in words that never quote the value (it may be a secret)."""
    path = [str(p) for p in error.absolute_path]
    keyword, expected, instance = error.validator, error.validator_value, error.instance
    if keyword == "required" and isinstance(instance, dict):
        missing = [name for name in expected if name not in instance]
        if missing:
            return ".".join([*path, missing[0]]), "required, but missing"
    where = ".".join(path) or "the body"
    if keyword == "type":
        wanted = expected if isinstance(expected, list) else [expected]
        return where, f"{_JSON_TYPES.get(type(instance), 'a value')} where the schema wants {' or '.join(wanted)}"
    if keyword == "enum":
        return where, f"a value outside the {len(expected)} the schema allows"
    if keyword == "const":
        return where, f"not the constant {json.dumps(expected)}"
    if keyword in ("pattern", "format"):
        return where, f"does not match the schema's {keyword} {expected}"
    if keyword in ("oneOf", "anyOf"):
        return where, f"matches none of the schema's {keyword} branches"
    if isinstance(expected, (int, float, bool)) or keyword in ("minLength", "maxLength", "minItems", "maxItems"):
        return where, f"breaks {keyword} {json.dumps(expected)}"
    return where, f"breaks the schema's {keyword!r} rule"


def _cell(answer: Answer, contract: Contract) -> str:
    """One answer in a table cell: its status and, for an error, the members a client branches on."""
    if answer.skipped:
        return "not sent"
    if answer.failure:
        return answer.short or "failed"
    text = str(answer.status)
    if answer.status is not None and answer.status >= 400 and isinstance(answer.body, dict):
        template = contract.error_shape.template or {}
        values = [answer.body.get(name) for name, placeholder in template.items()
                  if placeholder in _COMPARED_PLACEHOLDERS]
        shown = " ".join(str(v) for v in values if v is not None)
        if shown:
            text += " " + shown
    return text
