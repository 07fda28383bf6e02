"""The mock's pipeline on plain values: route, consult the scenario, validate, answer.

This module imports no aiohttp, so it can be driven and tested without a socket;
``app.py`` only translates between HTTP and these values. Order of the checks, and
so which error wins when several things are wrong: route, scenario (a scripted
error always wins), credentials, content type, body size, JSON, path parameters
(the version), body schema.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping
from urllib.parse import urlencode

import orjson

from .contract import Contract, Operation, flagged_properties
from .errors import (
    RESOURCE_NOT_FOUND,
    UNABLE_TO_PROCESS,
    UNAUTHORISED,
    UNSUPPORTED_MEDIA_TYPE,
    ApiProblem,
    from_violations,
    problem,
)
from .generation import BodyPlan, Generator, unseeded_token
from .scenarios import (
    Choice,
    Respond,
    Rule,
    ScenarioBook,
    Subject,
    UnknownScenario,
    deep_merge,
    default_problem,
    fingerprint,
)
from .store import Store, Stored, page_of
from .validation import (
    bearer_token,
    body_violations,
    has_credentials,
    media_type_accepted,
    parameter_violations,
    parse_json,
)

SCENARIO_HEADER = "x-mock-scenario"
_PREFER_CODE = re.compile(r"(?:^|[,;\s])code=(\d{3})\b")
_MALFORMED = b'{"type": "API_ERROR", "code": '


@dataclass(slots=True)
class MockRequest:
    """An HTTP request as plain data. Header names are lower-case."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes = b""
    body_too_large: bool = False
    _parsed: tuple[bool, Any] | None = field(default=None, repr=False)

    def json(self) -> tuple[bool, Any]:
        """(ok, value); parsed once, whoever asks first."""
        if self._parsed is None:
            self._parsed = (False, None) if self.body_too_large else parse_json(self.body)
        return self._parsed


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
    pending: Any = None  # an awaitable giving (status, body) or an ApiProblem
    pending_rule: Any = None


@dataclass(frozen=True)
class Options:
    strict: bool = False
    max_body_bytes: int = 1024 * 1024
    read_timeout_s: float = 10.0
    store_limit: int = 10_000
    api_keys: frozenset[str] | None = None  # when set, the only keys and tokens that are accepted


class Engine:
    """One mock: its contract, scenarios, randomness and options. Not thread-safe by design:
    it runs on one event loop, which is also what makes seeded runs reproducible."""

    def __init__(self, contract: Contract, book: ScenarioBook | None = None,
                 generator: Generator | None = None, options: Options | None = None) -> None:
        self.contract = contract
        self.book = book or ScenarioBook({})
        self.generator = generator or Generator()
        self.options = options or Options()
        items: dict[str, list[Operation]] = {}
        for op in sorted(contract.operations, key=lambda op: -op.literal_segments):
            items.setdefault(op.path, []).append(op)
        # Path items (operations sharing a template), by number of segments: a template only
        # fits paths with as many.
        self.path_items: dict[int, list[list[Operation]]] = {}
        for path, operations in items.items():
            self.path_items.setdefault(path.count("/"), []).append(operations)
        self.plans = {
            (op.operation_id, status): BodyPlan(resp.schema, op.request_body.schema if op.request_body else None)
            for op in contract.operations for status, resp in op.responses.items() if 200 <= status < 300
        }
        self.store = Store(self.options.store_limit)
        self._tenants: dict[tuple[str, str], str] = {}
        self.actions: dict[str, Callable[[ActionCall], Any]] = {}
        self.by_id = {op.operation_id: op for op in contract.operations}
        self.write_only = {
            op.operation_id: sorted(set(flagged_properties(op.request_body.schema, "writeOnly")))
            if op.request_body else []
            for op in contract.operations
        }
        # What an update may change: the fields a response echoes from the request.
        self.updatable = {op_id: [name for name, _ in plan.echoed] for (op_id, _), plan in self.plans.items()}
        self.auth_hints = {op.operation_id: _auth_hint(op) for op in contract.operations}
        if self.options.strict:  # compiled now, not on the first strict request
            for op in contract.operations:
                if op.request_body is not None:
                    op.request_body.strict_validator.warm()
        self.api_key_headers = sorted({s.header for op in contract.operations for s in op.security
                                       if s.kind == "apiKey"})
        self.success = {
            op.operation_id: min((s for s in op.responses if 200 <= s < 300), default=200)
            for op in contract.operations
        }

    # ------------------------------------------------------------ pipeline

    def handle(self, req: MockRequest) -> MockResponse:
        """Answer one request. Never raises for anything the client can send."""
        rid = self.generator.token(self.contract.request_id.prefix, self.contract.request_id.length)
        routed = self.route(req.method, req.path)
        if isinstance(routed, ApiProblem):
            return self._error(routed, rid)
        op, params = routed
        try:
            choice = self._choose(req)
        except UnknownScenario as exc:
            return self._error(problem(400, message=f"Unknown scenario {exc.args[0]!r} in X-Mock-Scenario; "
                                                   f"loaded: {', '.join(sorted(self.book.scenarios)) or 'none'}"),
                               rid, op)
        rule, scenario_name = self._scripted(op, req, params, choice)
        if isinstance(rule, ApiProblem):
            return self._error(rule, rid, op)
        if rule is not None and not (200 <= rule.respond.status < 300):
            return self._scripted_error(op, rule, scenario_name, rid)
        failure = self.check(op, params, req)
        if failure is not None:
            return self._error(failure, rid, op)
        status = rule.respond.status if rule is not None else self.success[op.operation_id]
        ok, body = req.json()
        done = self.perform(op, params, req, body if ok else None, status, rule.respond.body if rule else None)
        if isinstance(done, ApiProblem):
            return self._error(done, rid, op)
        if not isinstance(done, tuple):  # an action that must wait for I/O: the adapter awaits it
            return MockResponse(status=status, body=b"", request_id=rid, operation=op.operation_id,
                                scenario=scenario_name, rule=rule.label if rule else None,
                                pending=done, pending_rule=rule)
        status, out = done
        return self.finish(status, out, rid, op, scenario_name, rule)

    def finish(self, status: int, out: Any, rid: str, op: Operation | None, scenario: str | None,
               rule: Rule | None) -> MockResponse:
        """The answer of a valid request, with a scripted body merged over it."""
        if rule is not None and rule.respond.body and 200 <= status < 300 and isinstance(out, dict):
            out = deep_merge(out, rule.respond.body)
        return self._answer(status, out, rid, op, scenario, rule)

    def complete(self, pending: MockResponse, outcome: tuple[int, Any] | ApiProblem) -> MockResponse:
        """Turn the outcome of an awaited action into the answer."""
        op = self.by_id.get(pending.operation or "")
        if isinstance(outcome, ApiProblem):
            return self._error(outcome, pending.request_id, op)
        status, out = outcome
        return self.finish(status, out, pending.request_id, op, pending.scenario, pending.pending_rule)

    # ------------------------------------------------------------ behaviours

    def perform(self, op: Operation, params: Mapping[str, str], req: MockRequest, body: Any,
                status: int, override: Mapping[str, Any] | None = None) -> tuple[int, Any] | ApiProblem | Any:
        """Do what the operation's behaviour says; (status, body), an ApiProblem, or an awaitable.

        ``override`` is a scripted body: a created resource is stored as it was answered.
        """
        plan = self.plans.get((op.operation_id, status))
        behaviour = op.behaviour
        if behaviour is None or behaviour.kind == "create":
            out = plan.render(self.generator, body) if plan else None
            if override and isinstance(out, dict):
                out = deep_merge(out, override)
            if behaviour is not None and isinstance(out, dict):
                secrets = {k: body[k] for k in self.write_only[op.operation_id] if isinstance(body, dict) and k in body}
                self.store.put(self.tenant(req.headers), behaviour.collection, str(out.get(behaviour.id_field)),
                               out, secrets)
            return status, out
        if behaviour.kind == "data":
            return status, copy.deepcopy(behaviour.data)
        if behaviour.kind == "list":
            return status, self._list(op, behaviour, req)
        tenant = self.tenant(req.headers)
        key = params.get(behaviour.key or "", "")
        stored = self.store.get(tenant, behaviour.collection, key) if behaviour.key else None
        if behaviour.key and stored is None:
            return problem(404, RESOURCE_NOT_FOUND, f"No {behaviour.collection} with id {key!r} here")
        if behaviour.kind == "read":
            return status, stored.body
        if behaviour.kind == "delete":
            self.store.delete(tenant, behaviour.collection, key)
            return status, stored.body
        if behaviour.kind == "update":
            for name in self.updatable.get(op.operation_id, ()):
                if isinstance(body, dict) and name in body:
                    stored.body[name] = body[name]
            for name in self.write_only[op.operation_id]:
                if isinstance(body, dict) and name in body:
                    stored.secrets[name] = body[name]
            return status, stored.body
        action = self.actions.get(behaviour.action or "")
        if action is None:
            return problem(500, message=f"No action {behaviour.action!r} is available in this mock")
        return action(ActionCall(self, op, tenant, stored, body, status, req))

    def _list(self, op: Operation, behaviour: Any, req: MockRequest) -> dict[str, Any]:
        page = behaviour.page
        limit = _positive(req.query.get(page.limit_param), page.default_limit)
        number = _positive(req.query.get(page.page_param), 1)
        items = [s.body for s in self.store.items(self.tenant(req.headers), behaviour.collection)]
        order = req.query.get(page.order_param) if page.order_param else None
        descending = page.direction_param is not None and req.query.get(page.direction_param, "").lower() == "desc"
        if order:
            items = sorted(items, key=lambda item: _sort_key(item.get(order)), reverse=descending)
        elif descending:
            items.reverse()
        chosen, pages = page_of(items, number, limit)

        def url(n: int) -> str:
            return f"{req.path}?{urlencode({**req.query, page.limit_param: str(limit), page.page_param: str(n)})}"

        def link(n: int) -> str | None:
            return url(n) if 1 <= n <= pages else None

        names = page.link_names
        return {
            page.items: chosen,
            page.limit: limit,
            page.page: number,
            page.pages: pages,
            page.links: {names["first"]: link(1), names["previous"]: link(number - 1),
                         names["current"]: url(number), names["next"]: link(number + 1)},
        }

    def tenant(self, headers: Mapping[str, str]) -> str:
        """Whose resources a request sees: its platform id, else its credential's fingerprint."""
        header = self.contract.tenancy_header
        if header and headers.get(header, "").strip():
            return "platform:" + headers[header].strip()
        for kind, value in self.credentials(headers):
            key = (kind, value)
            tenant = self._tenants.get(key)
            if tenant is None:
                tenant = f"{kind}:{fingerprint(value)}"
                if len(self._tenants) < 4096:
                    self._tenants[key] = tenant
            return tenant
        return "anonymous"

    def route(self, method: str, path: str) -> tuple[Operation, dict[str, str]] | ApiProblem:
        """The operation for a method and path; 404 for an unknown path, 405 for a wrong method.

        As in OpenAPI, each path template is one path item: the most specific template
        that fits the path decides (``/webhooks/actions`` before ``/webhooks/{id}``), and a
        method it does not list is a 405, never a fall-through to another template.
        """
        for operations in self.path_items.get(path.count("/"), ()):
            params = operations[0].match_path(path)
            if params is None:
                continue
            for op in operations:
                if op.method == method:
                    return op, params
            methods = ", ".join(sorted(op.method for op in operations))
            return problem(405, message=f"{method} is not allowed on {path}; allowed: {methods}",
                           headers=[("Allow", methods)])
        return problem(404, message=f"No operation of the contract lives at {path}")

    def check(self, op: Operation, params: Mapping[str, str], req: MockRequest) -> ApiProblem | None:
        """The first failed contract check, in the documented order, or None."""
        if not has_credentials(op, req.headers, self.options.api_keys):
            return problem(401, UNAUTHORISED, self.auth_hints[op.operation_id])
        body = op.request_body
        if body is not None:
            if not media_type_accepted(body.content_type, req.headers.get("content-type")):
                return problem(400, UNSUPPORTED_MEDIA_TYPE,
                               f"Content-Type must be {body.content_type}")
            if req.body_too_large:
                return problem(400, message=f"The request body is larger than the limit of "
                                            f"{self.options.max_body_bytes} bytes")
            ok, value = req.json()
            if not ok:
                return problem(400, UNABLE_TO_PROCESS, "The body is not valid JSON (UTF-8)")
            if body.schema.get("type") == "object" and not isinstance(value, dict):
                return problem(400, UNABLE_TO_PROCESS, "The body must be a JSON object")
        violations = parameter_violations(op.path_params, params, "path")
        if violations:
            return from_violations(violations)
        violations = parameter_violations(op.query_params, req.query, "query")
        if violations:
            return from_violations(violations)
        if body is not None:
            violations = body_violations(op, req.json()[1], self.options.strict)
            if violations:
                return from_violations(violations)
        return None

    # ------------------------------------------------------------ scenarios

    def _choose(self, req: MockRequest) -> Choice | None:
        return self.book.choose(req.headers.get(SCENARIO_HEADER), self.credentials(req.headers))

    def credentials(self, headers: Mapping[str, str]) -> list[tuple[str, str]]:
        """Every credential the request carries, as (kind, value); kinds are 'api_key' and 'token'."""
        found = []
        for name in self.api_key_headers:
            value = headers.get(name, "").strip()
            if value:
                found.append(("api_key", value))
        token = bearer_token(headers)
        if token:
            found.append(("token", token))
        return found

    def _scripted(self, op: Operation, req: MockRequest, params: Mapping[str, str],
                  choice: Choice | None) -> tuple[Rule | ApiProblem | None, str | None]:
        """The rule that answers, if any: Prefer: code=NNN first, then the chosen scenario."""
        prefer = _PREFER_CODE.search(req.headers["prefer"]) if "prefer" in req.headers else None
        if prefer and req.headers.get(SCENARIO_HEADER) is None:
            status = int(prefer.group(1))
            if status not in op.responses:
                listed = ", ".join(map(str, sorted(op.responses)))
                return problem(400, message=f"Prefer: code={status} is not a status of {op.operation_id}; "
                                            f"its contract lists {listed}"), None
            return Rule(label=f"code={status}", index=-1, match=None, times=None,
                        respond=Respond(status=status)), "Prefer"
        if choice is None:
            return None, None
        rule = self.book.answer(choice, Subject(req.method, req.path, params, req.headers, req.query, req.json))
        if rule is not None and rule.respond.fault != "reset" and rule.respond.status not in op.responses:
            return None, None  # a rule written for another operation's statuses
        return rule, (choice.scenario.name if rule is not None else None)

    def _scripted_error(self, op: Operation, rule: Rule, scenario: str | None, rid: str) -> MockResponse:
        respond = rule.respond
        body = default_problem(op, respond.status).body()
        if respond.body:
            body = deep_merge(body, respond.body)
        return self._answer(respond.status, body, rid, op, scenario, rule)

    # ------------------------------------------------------------ answers

    def _answer(self, status: int, body: Any, rid: str, op: Operation | None,
                scenario: str | None, rule: Rule | None) -> MockResponse:
        fault = rule.respond.fault if rule else None
        if fault == "empty":
            raw = b""
        elif fault == "malformed":
            raw = _MALFORMED
        else:
            raw = dump(body)
        return MockResponse(
            status=status,
            body=raw,
            request_id=rid,
            headers=rule.respond.headers if rule else (),
            delay_ms=rule.respond.delay_ms if rule else 0,
            fault=fault,
            operation=op.operation_id if op else None,
            scenario=scenario,
            rule=rule.label if rule else None,
        )

    def _error(self, failure: ApiProblem, rid: str, op: Operation | None = None) -> MockResponse:
        return MockResponse(
            status=failure.status,
            body=dump(failure.body()),
            request_id=rid,
            headers=failure.headers,
            operation=op.operation_id if op else None,
        )

    def error_response(self, failure: ApiProblem) -> MockResponse:
        """An ApiError answer outside the pipeline (admin API, oversize bodies, unexpected faults)."""
        return self._error(failure, unseeded_token(self.contract.request_id.prefix, self.contract.request_id.length))


@dataclass
class ActionCall:
    """Everything a named action gets: the engine, the operation, whose resource, and the request."""

    engine: Engine
    op: Operation
    tenant: str
    stored: Stored | None
    body: Any
    status: int
    request: MockRequest


def _sort_key(value: Any) -> tuple[int, Any]:
    """Orders values of mixed types without failing: nulls last, then by type, then by value."""
    if value is None:
        return (3, "")
    if isinstance(value, bool):
        return (0, int(value))
    if isinstance(value, (int, float)):
        return (0, value)
    return (1, str(value)) if isinstance(value, str) else (2, json.dumps(value, sort_keys=True))


def _positive(value: str | None, default: int) -> int:
    return int(value) if value is not None and value.isdigit() and int(value) > 0 else default


def _auth_hint(op: Operation) -> str:
    """The 401 message, naming the ways this operation accepts credentials."""
    ways = [s.name if s.kind == "apiKey" else f"{s.name}: Bearer <token>" for s in op.security]
    return "Missing or invalid credentials" + (f": send {' or '.join(ways)}." if ways else ".")


def dump(value: Any) -> bytes:
    """Compact UTF-8 JSON. orjson is several times faster than the standard library here;
    the fallback covers what it refuses (integers beyond 64 bits in a scenario file)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return json.dumps(value, separators=(",", ":")).encode("ascii")
