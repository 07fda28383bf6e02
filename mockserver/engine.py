"""The mock's pipeline on plain values: route, consult the scenario, validate, answer.

This module imports no aiohttp, so it can be driven and tested without a socket;
``app.py`` only translates between HTTP and these values. Order of the checks, and
so which error wins when several things are wrong: route, scenario (a scripted
error always wins), credentials, content type, body size, JSON, path parameters
(the version), body schema.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterator, Mapping
from urllib.parse import quote_plus, urlencode


from .answers import MockResponse, error_answer, scripted_answer
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
from .generation import Generator, response_plan, unseeded_token
from .scenarios import (
    Choice,
    Respond,
    Rule,
    ScenarioBook,
    Subject,
    UnknownScenario,
    deep_merge,
    fingerprint,
    scripted_body,
)
from .state import Epoch
from .state.store import MemoryStore, ResourceStore, Stored
from .validation import (
    bearer_token,
    body_violations,
    cookies,
    has_credentials,
    media_type_accepted,
    parameter_violations,
    parse_json,
)

__all__ = ["Engine", "MockRequest", "MockResponse", "Options", "ActionCall"]

SCENARIO_HEADER = "x-mock-scenario"
_PREFER_CODE = re.compile(r"(?:^|[,;\s])code=(\d{3})\b")


@dataclass(slots=True)
class MockRequest:
    """An HTTP request as plain data. Header names are lower-case."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes = b""
    body_too_large: bool = False
    generation: int = 0  # the reset epoch the request arrived in
    _parsed: tuple[bool, Any] | None = field(default=None, repr=False)
    _credentials: list[tuple[str, str]] | None = field(default=None, repr=False)

    def json(self) -> tuple[bool, Any]:
        """(ok, value); parsed once, whoever asks first."""
        if self._parsed is None:
            self._parsed = (False, None) if self.body_too_large or not self.body else parse_json(self.body)
        return self._parsed


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
                 generator: Generator | None = None, options: Options | None = None,
                 store: ResourceStore | None = None, epoch: Epoch | None = None) -> None:
        self.contract = contract
        self.book = book or ScenarioBook({})
        self.generator = generator or Generator()
        self.options = options or Options()
        self.epoch = epoch or Epoch()
        self.stale_generator = Generator()  # for requests that straddle a reset (see handle)
        items: dict[str, list[Operation]] = {}
        for op in sorted(contract.operations, key=lambda op: -op.literal_segments):
            items.setdefault(op.path, []).append(op)
        # Path items (operations sharing a template), by number of segments: a template only
        # fits paths with as many.
        self.path_items: dict[int, list[list[Operation]]] = {}
        for path, operations in items.items():
            self.path_items.setdefault(path.count("/"), []).append(operations)
        self.by_id = {op.operation_id: op for op in contract.operations}
        # Answer plans, built by ``warm_up`` after the server listens, or by the first request
        # that needs one before that. Prefer: dynamic=false answers examples and defaults
        # where the document has them.
        self.plans = _Plans(self.by_id, contract.null_when_unsaid, dynamic=True)
        self.static_plans = _Plans(self.by_id, contract.null_when_unsaid, dynamic=False)
        self.store: ResourceStore = store if store is not None else MemoryStore(self.options.store_limit)
        self._tenants: dict[tuple[str, str], str] = {}
        # Named actions (async) and presenters (collection -> fills in server-managed fields):
        # given by the owners of that behaviour and state (see lifecycle.install).
        self.actions: dict[str, Callable[[ActionCall], Awaitable[tuple[int, Any] | ApiProblem]]] = {}
        self.presenters: dict[str, Callable[[str, list[dict[str, Any]], bool], Awaitable[None]]] = {}
        memo: dict[int, frozenset[str]] = {}
        self.write_only = {
            op.operation_id: sorted(flagged_properties(op.request_body.schema, "writeOnly", memo))
            if op.request_body else []
            for op in contract.operations
        }
        self.auth_hints = {op.operation_id: _auth_hint(op) for op in contract.operations}
        self.api_key_headers = sorted({s.header for op in contract.operations for alt in op.security
                                       for s in (alt, *alt.also) if s.kind == "apiKey" and s.location == "header"})
        self.statuses = {op.operation_id: frozenset(op.responses) for op in contract.operations}
        self.error_statuses = {op.operation_id: frozenset(s for s in op.responses if not 200 <= s < 300)
                               for op in contract.operations}
        # A contract without an error mapping answers errors as RFC 9457 problem details.
        self.error_shape = contract.error_shape
        self.content_types = {(op.operation_id, status): resp.content_type
                              for op in contract.operations for status, resp in op.responses.items()}
        self.success = {
            op.operation_id: min((s for s in op.responses if 200 <= s < 300), default=200)
            for op in contract.operations
        }

    # ------------------------------------------------------------ pipeline

    async def handle(self, req: MockRequest) -> MockResponse:
        """Answer one request. Never raises for anything the client can send.

        A request that arrived before the last reset is still answered, but from a generator
        of its own and without scenario rules: it must not shift the seeded sequence or use up
        the ``times`` of the test that runs now.
        """
        current = self.epoch.current(req.generation)
        generator = self.generator if current else self.stale_generator
        try:
            return await self._handle(req, generator, current)
        except RecursionError:  # JSON nested deeper than Python's stack, yet within the parser's limit
            return self._error_answer(problem(400, UNABLE_TO_PROCESS, "The body is nested too deeply"),
                                      generator.token(self.contract.request_id.prefix,
                                                      self.contract.request_id.length))

    async def _handle(self, req: MockRequest, generator: Generator, current: bool) -> MockResponse:
        rid = generator.token(self.contract.request_id.prefix, self.contract.request_id.length)
        routed = self.route(req.method, req.path)
        if isinstance(routed, ApiProblem):
            return self._error_answer(routed, rid)
        op, params = routed
        op_id = op.operation_id
        try:
            choice = await self._choose(req) if current else None
        except UnknownScenario as exc:
            return self._error_answer(problem(400, message=f"Unknown scenario {exc.args[0]!r} in X-Mock-Scenario; "
                                                     f"loaded: {', '.join(sorted(self.book.scenarios)) or 'none'}"),
                                rid, op_id)
        # The contract checks run first so that a rule is only counted when it really answers:
        # a scenario's scripted error wins over any failed check (the provider failing before it
        # looks at the request), a scripted success needs a valid request, and Prefer (the
        # client's own wish) is granted only to a client whose credentials pass.
        failure = self.check(op, params, req)
        rule, scenario_name = await self._scripted(op, req, params, choice, failure is None)
        if isinstance(rule, ApiProblem):
            return self._error_answer(rule, rid, op_id)
        if scenario_name == "Prefer" and failure is not None and failure.kind == UNAUTHORISED:
            return self._error_answer(failure, rid, op_id)
        if rule is not None and not (200 <= rule.respond.status < 300):
            return self._scripted_error(op, rule, scenario_name, rid)
        if failure is not None:
            return self._error_answer(failure, rid, op_id)
        status = rule.respond.status if rule is not None else self.success[op_id]
        ok, body = req.json()
        override = rule.respond.body if rule else None
        static = False
        example: Any = None
        if "prefer" in req.headers:  # Prism's conventions: Prefer: example=NAME, dynamic=false
            wanted = _prefer_example_or_static(req.headers["prefer"])
            if wanted is not None:
                name, static = wanted
                if name is not None:
                    examples = op.responses[status].examples if status in op.responses else {}
                    if name not in examples:
                        listed = ", ".join(sorted(examples)) or "none"
                        return self._error_answer(problem(400, message=f"Prefer: example={name} is not an example of "
                                                                       f"{op_id} {status}; its examples: {listed}"),
                                                  rid, op_id)
                    example = examples[name]
                    if isinstance(example, dict):  # a created resource is stored as answered
                        override = deep_merge(override or {}, example)
        done = await self.perform(op, params, req, body if ok else None, status, override, generator, static)
        if isinstance(done, ApiProblem):
            if rule is not None and choice is not None and scenario_name != "Prefer":
                await self.book.refund(choice, rule)  # the scripted success did not answer
            return self._error_answer(done, rid, op_id)
        status, out = done
        if rule is not None and rule.respond.body and 200 <= status < 300 and isinstance(out, dict):
            out = deep_merge(out, rule.respond.body)
        if example is not None:
            out = deep_merge(out, example) if isinstance(out, dict) and isinstance(example, dict) else example
        return scripted_answer(status, out, rid, op_id, scenario_name, rule,
                               self.content_types.get((op_id, status), "application/json"))

    def warm_up(self) -> Iterator[str]:
        """Build what a request would otherwise build on first use (answer plans, the compiled
        fast path of each request body, strict mode's closed schemas), one operation per step,
        so that the server can listen first and do this between requests."""
        for op in self.contract.operations:
            for status in op.responses:
                if 200 <= status < 300:
                    self.plans.get((op.operation_id, status))
            if op.request_body is not None:
                op.request_body.validator.warm()
                if self.options.strict:
                    op.request_body.strict_validator.warm()
            yield op.operation_id

    # ------------------------------------------------------------ behaviours

    async def perform(self, op: Operation, params: Mapping[str, str], req: MockRequest, body: Any,
                      status: int, override: Mapping[str, Any] | None = None,
                      generator: Generator | None = None, static: bool = False) -> tuple[int, Any] | ApiProblem:
        """Do what the operation's behaviour says; (status, body) or an ApiProblem.

        ``override`` is a scripted body: a created resource is stored as it was answered.
        Nothing is stored for a request that started before the last reset.
        """
        plan = (self.static_plans if static else self.plans).get((op.operation_id, status))
        behaviour = op.behaviour
        if op.parent is not None:
            collection, name = op.parent
            parent_key = params.get(name, "")
            if await self.store.get(self.tenant(req.headers, self._credentials_of(req)), collection, parent_key) is None:
                return problem(404, RESOURCE_NOT_FOUND, f"No {collection} with id {parent_key!r} here")
        if behaviour is None or behaviour.kind == "create":
            out = plan.render(generator or self.generator, body) if plan else None
            if override and isinstance(out, dict):
                out = deep_merge(out, override)
            if behaviour is not None and isinstance(out, dict):
                tenant = self.tenant(req.headers, self._credentials_of(req))
                key = str(out.get(behaviour.id_field))
                if self.epoch.current(req.generation):  # checked at the write: a reset may come between
                    secrets = {k: body[k] for k in self.write_only[op.operation_id]
                               if isinstance(body, dict) and k in body}
                    await self.store.put(tenant, behaviour.collection, key, out, secrets)
                out = await self.present(tenant, behaviour.collection, out, fresh=True)
            return status, out
        if behaviour.kind == "data":
            return status, copy.deepcopy(behaviour.data)
        tenant = self.tenant(req.headers, self._credentials_of(req))
        if behaviour.kind == "list":
            return status, await self._list(tenant, behaviour, req)
        key = params.get(behaviour.key or "", "")
        stored = await self.store.get(tenant, behaviour.collection, key) if behaviour.key else None
        if behaviour.key and stored is None:
            return problem(404, RESOURCE_NOT_FOUND, f"No {behaviour.collection} with id {key!r} here")
        if behaviour.kind == "read":
            return status, await self.present(tenant, behaviour.collection, stored.body)
        if behaviour.kind == "delete":
            if self.epoch.current(req.generation):
                await self.store.delete(tenant, behaviour.collection, key)
            return status, await self.present(tenant, behaviour.collection, stored.body, fresh=True)
        if behaviour.kind == "update":
            changed = dict(stored.body)
            secrets: dict[str, Any] = {}
            if isinstance(body, dict):
                for name, _ in plan.echoed if plan is not None else ():  # what an update may change
                    if name in body:
                        changed[name] = body[name]
                for name in self.write_only[op.operation_id]:
                    if name in body:
                        secrets[name] = body[name]
            if self.epoch.current(req.generation):
                await self.store.put(tenant, behaviour.collection, key, changed, secrets)
            return status, await self.present(tenant, behaviour.collection, changed)
        action = self.actions.get(behaviour.action or "")
        if action is None:
            return problem(500, message=f"No action {behaviour.action!r} is available in this mock")
        return await action(ActionCall(self, op, tenant, key, stored, body, status, req))

    async def present(self, tenant: str, collection: str, body: dict[str, Any], fresh: bool = False) -> dict[str, Any]:
        """A stored body as answered: the owners of server-managed state fill in their fields.
        ``fresh``: just created or just deleted, so no owner holds anything for it (nothing to look up)."""
        presenter = self.presenters.get(collection)
        if presenter is not None:
            await presenter(tenant, [body], fresh)
        return body

    async def _list(self, tenant: str, behaviour: Any, req: MockRequest) -> Any:
        page = behaviour.page
        limit = _positive(req.query.get(page.limit_param) if page.limit_param else None, page.default_limit)
        number = _positive(req.query.get(page.page_param) if page.page_param else None, 1)
        if not page.limit_param:  # no paging parameters: one page holds everything
            limit = max(limit, 1_000_000)
        order = req.query.get(page.order_param) if page.order_param else None
        descending = page.direction_param is not None and req.query.get(page.direction_param, "").lower() == "desc"
        chosen, pages = await self.store.page(tenant, behaviour.collection, number, limit, order or None, descending)
        presenter = self.presenters.get(behaviour.collection)
        if presenter is not None:
            await presenter(tenant, chosen, False)  # one look for the whole page
        if not page.items:  # the answer is the array itself
            return chosen

        url = _page_urls(req.path, req.query, page.limit_param, limit, page.page_param)

        def link(n: int) -> str | None:
            return url(n) if 1 <= n <= pages else None

        out: dict[str, Any] = {page.items: chosen}
        for key, value in ((page.limit, limit), (page.page, number), (page.pages, pages)):
            if key:
                out[key] = value
        if page.links:
            names = page.link_names
            values = {"first": link(1), "previous": link(number - 1), "current": url(number), "next": link(number + 1)}
            out[page.links] = {names[k]: v for k, v in values.items() if k in names}
        return out

    def tenant(self, headers: Mapping[str, str], credentials: list[tuple[str, str]] | None = None) -> str:
        """Whose resources a request sees: its platform id, else its credential's fingerprint."""
        header = self.contract.tenancy_header
        if header and headers.get(header, "").strip():
            return "platform:" + headers[header].strip()
        for kind, value in self.credentials(headers) if credentials is None else credentials:
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
        if not has_credentials(op, req.headers, self.options.api_keys, req.query):
            return problem(401, UNAUTHORISED, self.auth_hints[op.operation_id])
        body = op.request_body
        if body is not None and not req.body and not req.body_too_large and not body.required:
            body = None  # an optional body that was not sent
        if body is not None:
            if not media_type_accepted(body.content_type, req.headers.get("content-type")):
                return problem(400, UNSUPPORTED_MEDIA_TYPE,
                               f"Content-Type must be {body.content_type}")
            if req.body_too_large:
                return problem(400, message=f"The request body is larger than the limit of "
                                            f"{self.options.max_body_bytes} bytes")
            if body.json:
                ok, value = req.json()
                if not ok:
                    return problem(400, UNABLE_TO_PROCESS, "The body is not valid JSON (UTF-8)")
                if body.schema.get("type") == "object" and not isinstance(value, dict):
                    return problem(400, UNABLE_TO_PROCESS, "The body must be a JSON object")
        for location, declared, values in (("path", op.path_params, params), ("query", op.query_params, req.query),
                                           ("header", op.header_params, req.headers),
                                           ("cookie", op.cookie_params, None)):
            if not declared:
                continue
            violations = parameter_violations(declared, values if values is not None else cookies(req.headers),
                                              location)
            if violations:
                return from_violations(violations)
        if body is not None and body.json:
            violations = body_violations(op, req.json()[1], self.options.strict)
            if violations:
                return from_violations(violations)
        return None

    # ------------------------------------------------------------ scenarios

    async def _choose(self, req: MockRequest) -> Choice | None:
        return await self.book.choose(req.headers.get(SCENARIO_HEADER), self._credentials_of(req))

    def _credentials_of(self, req: MockRequest) -> list[tuple[str, str]]:
        """The request's credentials, read from its headers once however often they are asked for."""
        if req._credentials is None:
            req._credentials = self.credentials(req.headers)
        return req._credentials

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

    async def _scripted(self, op: Operation, req: MockRequest, params: Mapping[str, str],
                  choice: Choice | None, valid: bool) -> tuple[Rule | ApiProblem | None, str | None]:
        """The rule that answers, if any: Prefer: code=NNN first, then the chosen scenario.

        A rule applies only with a status this operation can answer, and a success only to a
        valid request; only a rule that applies is counted against its ``times``.
        """
        prefer = _PREFER_CODE.search(req.headers["prefer"]) if "prefer" in req.headers else None
        if prefer and req.headers.get(SCENARIO_HEADER) is None:
            status = int(prefer.group(1))
            if status not in op.responses:
                listed = ", ".join(map(str, sorted(op.responses)))
                return problem(400, message=f"Prefer: code={status} is not a status of {op.operation_id}; "
                                            f"its contract lists {listed}"), None
            if 200 <= status < 300 and not valid:
                return None, None
            return Rule(label=f"code={status}", index=-1, match=None, times=None,
                        respond=Respond(status=status)), "Prefer"
        if choice is None:
            return None, None
        # Only a rule whose status this operation can answer applies; only a rule that applies is counted.
        statuses = self.statuses[op.operation_id] if valid else self.error_statuses[op.operation_id]
        rule = await self.book.answer(choice, Subject(req.method, req.path, params, req.headers, req.query, req.json),
                                statuses)
        return rule, (choice.scenario.name if rule is not None else None)

    def _scripted_error(self, op: Operation, rule: Rule, scenario: str | None, rid: str) -> MockResponse:
        """A scripted error in the contract's error shape. A contract without one answers the
        body the document declares for that status, else RFC 9457 problem details."""
        respond = rule.respond
        body, content_type = scripted_body(op, respond.status, respond.body, self.generator,
                                           prefer_null=self.contract.null_when_unsaid,
                                           shape=self.error_shape)
        return scripted_answer(respond.status, body, rid, op.operation_id, scenario, rule, content_type)

    def error_response(self, failure: ApiProblem) -> MockResponse:
        """An ApiError answer outside the pipeline (admin API, oversize bodies, unexpected faults)."""
        return self._error_answer(failure, self.unseeded_request_id())

    def _error_answer(self, failure: ApiProblem, rid: str, operation: str | None = None) -> MockResponse:
        return error_answer(failure, rid, operation, self.error_shape)

    def unseeded_request_id(self) -> str:
        """A request id drawn outside the seeded sequence (admin answers, transport errors)."""
        return unseeded_token(self.contract.request_id.prefix, self.contract.request_id.length)


@dataclass
class ActionCall:
    """Everything a named action gets: the engine, the operation, whose resource, and the request."""

    engine: Engine
    op: Operation
    tenant: str
    key: str
    stored: Stored | None
    body: Any
    status: int
    request: MockRequest


def _positive(value: str | None, default: int) -> int:
    return int(value) if value is not None and value.isdigit() and int(value) > 0 else default


_PREFER_EXAMPLE = re.compile(r"(?:^|[,;\s])example=([^,;\s]+)")
_PREFER_DYNAMIC = re.compile(r"(?:^|[,;\s])dynamic=(true|false)\b")


def _prefer_example_or_static(prefer: str) -> tuple[str | None, bool] | None:
    """(example name or None, static?) from a Prefer header, or None when it asks for neither."""
    example = _PREFER_EXAMPLE.search(prefer)
    dynamic = _PREFER_DYNAMIC.search(prefer)
    if example is None and dynamic is None:
        return None
    return (example.group(1) if example else None), (dynamic is not None and dynamic.group(1) == "false")


def _way(scheme: Any) -> str:
    if scheme.kind == "bearer":
        return f"{scheme.name}: Bearer <token>"
    if scheme.kind == "basic":
        return f"{scheme.name}: Basic <credentials>"
    if scheme.kind == "http":
        return scheme.name
    return scheme.name if scheme.location == "header" else f"the {scheme.location} parameter {scheme.name}"


def _auth_hint(op: Operation) -> str:
    """The 401 message, naming the ways this operation accepts credentials."""
    ways = [" and ".join(_way(s) for s in (alternative, *alternative.also)) for alternative in op.security]
    return "Missing or invalid credentials" + (f": send {' or '.join(ways)}." if ways else ".")


class _Plans(dict):
    """(operation id, status) -> the plan of that success answer, built on first use."""

    def __init__(self, operations: Mapping[str, Operation], prefer_null: bool, dynamic: bool) -> None:
        super().__init__()
        self.operations = operations
        self.prefer_null = prefer_null
        self.dynamic = dynamic

    def get(self, key: tuple[str, int], default: Any = None) -> Any:
        found = super().get(key)
        if found is None:
            op = self.operations.get(key[0])
            if op is None or key[1] not in op.responses or not 200 <= key[1] < 300:
                return default
            found = self[key] = response_plan(op, key[1], dynamic=self.dynamic, prefer_null=self.prefer_null)
        return found


def _page_urls(path: str, query: Mapping[str, str], limit_param: str | None, limit: int,
               page_param: str | None) -> Callable[[int], str]:
    """The URL of page ``n`` of this list: the request's own query with the paging set. The
    query is encoded once (as urlencode writes it), not once for every link of the answer."""
    if not page_param:
        whole = urlencode(query)
        return lambda n: f"{path}?{whole}"
    merged: dict[Any, Any] = {**query, limit_param: str(limit), page_param: None}
    before: list[str] = []
    after: list[str] = []
    side = before
    for name, value in merged.items():
        if name == page_param:
            side = after
        else:
            side.append(f"{quote_plus(str(name))}={quote_plus(str(value))}")
    head, tail, key = "&".join(before), "&".join(after), quote_plus(str(page_param))
    return lambda n: f"{path}?" + "&".join(x for x in (head, f"{key}={n}", tail) if x)
