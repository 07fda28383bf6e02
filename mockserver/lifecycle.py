"""What a webhook means: secrets that roll, and signed deliveries of events to its URL.

This is the one module that names webhook fields, because it acts on what they mean:
deliveries go to ``url`` with the configured authentication, are signed with
``secret_key`` (and ``previous_secret_key`` while a roll is under way), honour
``active``, ``included_actions`` and ``excluded_actions``, and a webhook that keeps
failing enters the penalty box, with later events queued behind it in order.

The penalty box is server state, owned here: :class:`Deliveries` keeps one
:class:`WebhookState` per webhook and fills ``penalty_box`` and ``penalty_box_data`` into
every webhook the engine answers (a presenter). It never reads them back from the stored
body, which a client can write with PATCH. A webhook's state, queue and worker task end
with the webhook (deleted or evicted from the store) and at every reset; every event
carries the reset epoch it was emitted in, and work of an older epoch leaves no trace.

Deliveries only go to loopback addresses unless more hosts are allowed: a mock must not
be turned into a way to make requests to arbitrary machines. A host name is judged by the
addresses it resolves to, and the delivery client connects only to addresses so judged.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import socket
import sys
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from ipaddress import ip_address
from typing import Any, Awaitable, Callable, Iterable
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from .engine import ActionCall, Engine
from .errors import INVALID_OPERATION, BAD_REQUEST, ApiProblem, problem
from .generation import BodyPlan, Generator
from .signing import signature_headers
from .state.store import Stored

log = logging.getLogger("mockserver.deliveries")

# The webhook fields this module acts on.
URL = "url"
ID = "id"
ACTIVE = "active"
AUTHENTICATION = "authentication_type"
USERNAME = "username"
PASSWORD = "password"
API_HEADER = "api_header_field"
API_KEY = "api_key"
INCLUDED = "included_actions"
EXCLUDED = "excluded_actions"
SECRET = "secret_key"
PREVIOUS_SECRET = "previous_secret_key"
SIGNING = "signing_protocol"
PREVIOUS_SIGNING = "previous_signing_protocol"
ROLLED_AT = "secret_rolled_at"
PENALTY_BOX = "penalty_box"
PENALTY_DATA = "penalty_box_data"

COLLECTION = "webhooks"
MAX_ATTEMPTS = 3
DEFAULT_QUEUE_LIMIT = 1_000

# The contract refuses these as api_header_field (spec/schemas/common.json, HeaderName); the
# same rule is applied again where a header is sent, because a stored webhook may also come
# from a scripted answer. A header that frames or routes the request would let the API key
# (a client-chosen value) split it into two requests on the receiver's side.
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding", "connection", "host", "upgrade", "te",
                              "trailer", "keep-alive"})
_FRAMING_PREFIX = "proxy-"
_HEADER_VALUE_BREAKS = ("\r", "\n", "\0")

Lookup = Callable[[str], Awaitable[list[str]]]


@dataclass
class Attempt:
    """One try at delivering one event to one webhook. ``refused``: the mock itself would not
    send it (a host that is not allowed, a header it will not carry); the receiver saw nothing."""

    webhook_id: str
    event_id: str
    event_type: str
    attempt: int
    status: int | None
    error: str | None
    refused: bool
    latency_ms: float
    at: str


@dataclass(frozen=True, slots=True)
class _Event:
    event_id: str
    type: str
    payload: bytes
    generation: int  # the reset epoch it was emitted in


@dataclass(frozen=True, slots=True)
class _Outcome:
    ok: bool
    refused: bool
    message: str  # for the answer of send-test, test-connection and release
    cause: str  # for the penalty box


@dataclass(eq=False)
class WebhookState:
    """What the mock itself knows about one webhook's deliveries; no client writes any of it.

    ``queue`` holds the events waiting, in order, at most the queue limit (``dropped`` counts
    the rest). ``held`` is the event in the penalty box; while there is one, nothing else is
    sent. ``worker`` exists only while there is something to send.
    """

    tenant: str
    webhook_id: str
    queue: deque[_Event] = field(default_factory=deque)
    dropped: int = 0
    boxed_since: str | None = None
    retry_count: int = 0
    retry_at: str | None = None
    cause: str | None = None
    held: _Event | None = None
    releasing: bool = False
    worker: asyncio.Task[None] | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.tenant, self.webhook_id)

    def penalty_box_data(self) -> dict[str, Any] | None:
        if self.held is None:
            return None
        return {"retry_count": self.retry_count, "retry_at": self.retry_at, "cause": self.cause,
                "payload": self.held.payload.decode()}


class Deliveries:
    """Sends events to webhooks and owns their delivery state; records every attempt
    (bounded, oldest dropped first)."""

    def __init__(self, engine: Engine, timeout_s: float = 10.0, fast_retries: bool = False,
                 allowed_hosts: Iterable[str] = (), limit: int = 10_000, environment: str = "mock",
                 queue_limit: int = DEFAULT_QUEUE_LIMIT) -> None:
        self.engine = engine
        self.epoch = engine.epoch
        self.timeout_s = timeout_s
        self.fast_retries = fast_retries
        self.allowed_hosts = {h.lower() for h in allowed_hosts}
        self.attempts: deque[Attempt] = deque(maxlen=limit)
        self.environment = environment
        self.queue_limit = max(1, queue_limit)
        self.states: dict[tuple[str, str], WebhookState] = {}
        # How host names become addresses (asyncio getaddrinfo, run off the loop); one function for
        # judging and for connecting, so a test can stand in for DNS.
        self.lookup: Lookup = _getaddrinfo
        self._session: aiohttp.ClientSession | None = None
        self.resources = _resource_plans(engine)
        # Event data draws from its own generator: emitting events (an admin call) must not
        # change the seeded sequence of contract answers.
        self.generator = Generator(engine.generator.seed)
        self.catalogue = _catalogue(engine)

    # -------------------------------------------------------------- events

    async def emit(self, event_type: str, data: Any = None, platform: str | None = None) -> dict[str, Any] | ApiProblem:
        """Queue one event for every active webhook that selects it (on one platform, or all)."""
        if event_type not in self.catalogue:
            known = ", ".join(sorted(self.catalogue))
            return problem(400, BAD_REQUEST, f"Unknown event type {event_type!r}; known: {known}", field="type")
        if data is not None and not isinstance(data, dict):
            return problem(400, BAD_REQUEST, "data must be a JSON object", field="data")
        generation = self.epoch.value
        event = self._event(event_type, generation, data)
        if platform is None:
            hooks = [(tenant, stored.body) for tenant, stored in await self.engine.store.everywhere(COLLECTION)]
        else:  # one tenant's webhooks only: reading every tenant's would cost as much as the store holds
            tenant = f"platform:{platform}"
            bodies, _ = await self.engine.store.page(tenant, COLLECTION, 1, sys.maxsize)
            hooks = [(tenant, body) for body in bodies]
        targets: list[str] = []
        if not self.epoch.current(generation):  # a reset came in between: these webhooks are gone
            return {"event_id": event.event_id, "type": event_type, "webhooks": targets}
        for tenant, body in hooks:
            if _selects(body, event_type):
                webhook_id = str(body.get(ID))
                self._enqueue(self._state(tenant, webhook_id), event)
                targets.append(webhook_id)
        return {"event_id": event.event_id, "type": event_type, "webhooks": targets}

    def _event(self, event_type: str, generation: int, data: dict[str, Any] | None = None) -> _Event:
        """An event with its envelope; ``data`` is merged over a generated resource of its type."""
        object_type = event_type.split(".", 1)[0]
        plan = self.resources.get(object_type)
        resource = plan.render(self.generator, None) if plan else {}
        if data:
            resource = {**resource, **data}
        rid = self.engine.contract.request_id
        envelope = {
            "created_at": _now(),
            "type": event_type,
            "original_request_id": self.generator.token(rid.prefix, rid.length),
            "environment": self.environment,
            "data": resource,
        }
        return _Event(self.generator.token("evt_", 20), event_type,
                      json.dumps(envelope, separators=(",", ":")).encode(), generation)

    def _test_event(self, generation: int) -> _Event:
        """What send-test and test-connection send: an event of the first action in the catalogue."""
        return self._event(min(self.catalogue, default="TEST.EVENT"), generation)

    # -------------------------------------------------------------- per-webhook state

    def _state(self, tenant: str, webhook_id: str) -> WebhookState:
        key = (tenant, webhook_id)
        state = self.states.get(key)
        if state is None:
            state = self.states[key] = WebhookState(tenant, webhook_id)
        return state

    def _live(self, state: WebhookState, generation: int) -> bool:
        """True while this state is still the webhook's and no reset came since ``generation``."""
        return self.epoch.current(generation) and self.states.get(state.key) is state

    def _enqueue(self, state: WebhookState, event: _Event) -> None:
        if len(state.queue) >= self.queue_limit:
            state.dropped += 1
            if state.dropped == 1:
                log.warning("webhook %s has %d events waiting: later ones are dropped (and counted)",
                            state.webhook_id, len(state.queue))
            return
        state.queue.append(event)
        self._wake(state)

    def _wake(self, state: WebhookState) -> None:
        """Start a worker when there is something to send and nothing holds the line."""
        if state.worker is None and state.held is None and state.queue and self.states.get(state.key) is state:
            state.worker = asyncio.get_running_loop().create_task(self._work(state))

    async def _work(self, state: WebhookState) -> None:
        """Deliver this webhook's events one by one, in order; end when none is left or one is held."""
        try:
            while state.queue and state.held is None:
                event = state.queue.popleft()
                if not self._live(state, event.generation):
                    continue
                try:
                    await self._deliver(state, event)
                except asyncio.CancelledError:
                    raise
                except Exception:  # one bad event must not stop this webhook's line
                    log.exception("delivery of %s to webhook %s failed unexpectedly", event.event_id,
                                  state.webhook_id)
        finally:
            if state.worker is asyncio.current_task():
                state.worker = None

    async def _deliver(self, state: WebhookState, event: _Event) -> None:
        """Up to MAX_ATTEMPTS tries (each with the webhook as it is then); then the penalty box."""
        outcome: _Outcome | None = None
        for attempt in range(1, MAX_ATTEMPTS + 1):
            stored = await self.engine.store.get(state.tenant, COLLECTION, state.webhook_id)
            if stored is None or stored.body.get(ACTIVE) is False or not self._live(state, event.generation):
                return
            outcome = await self._post(stored.body, stored.secrets, event, attempt, event.generation)
            if outcome.ok or outcome.refused or not self._live(state, event.generation):
                return
            if attempt < MAX_ATTEMPTS:
                await asyncio.sleep(self._backoff(attempt))
        if outcome is not None:
            self._enter_box(state, event, outcome.cause)

    def _backoff(self, attempt: int) -> float:
        return (0.005 if self.fast_retries else 1.0) * 2 ** (attempt - 1)

    def _enter_box(self, state: WebhookState, event: _Event, cause: str) -> None:
        state.boxed_since = _now()
        state.retry_count = MAX_ATTEMPTS
        state.retry_at = self._retry_at(MAX_ATTEMPTS)
        state.cause = cause
        state.held = event
        log.warning("webhook %s entered the penalty box after %d failed attempts: %s",
                    state.webhook_id, MAX_ATTEMPTS, cause)

    def _retry_at(self, attempts: int) -> str:
        at = datetime.now(timezone.utc) + timedelta(seconds=self._backoff(attempts + 1))
        return at.replace(microsecond=0).isoformat().replace("+00:00", "Z")

    def present(self, tenant: str, body: dict[str, Any]) -> dict[str, Any]:
        """A webhook as answered: the penalty box as this owner knows it, whatever the body says."""
        state = self.states.get((tenant, str(body.get(ID))))
        if state is None or state.held is None:
            body[PENALTY_BOX] = None
            body[PENALTY_DATA] = None
        else:
            body[PENALTY_BOX] = state.boxed_since
            body[PENALTY_DATA] = state.penalty_box_data()
        return body

    def forget(self, tenant: str, collection: str, key: str) -> None:
        """A resource left the store (deleted or evicted): a webhook's line ends with it."""
        if collection == COLLECTION:
            state = self.states.pop((tenant, key), None)
            if state is not None:
                _stop(state)

    # -------------------------------------------------------------- sending

    async def _post(self, hook: dict[str, Any], secrets: dict[str, Any], event: _Event, attempt: int,
                    generation: int, record: bool = True) -> _Outcome:
        """One POST of ``event`` to the webhook's URL, recorded unless a reset came in between."""
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        refusal = await self._refusal(hook, secrets)
        if not self.epoch.current(generation):  # reset while the name was being looked up
            return _Outcome(False, False, "the mock was reset before this delivery was sent", None)
        if refusal is not None:
            error = refusal
        else:
            headers = {"Content-Type": "application/json", "User-Agent": "mockserver-deliveries",
                       **signature_headers([hook.get(SECRET) or "", hook.get(PREVIOUS_SECRET) or ""], event.payload),
                       **_auth_headers(hook, secrets)}
            try:
                session = await self._client()
                async with session.post(str(hook.get(URL)), data=event.payload, headers=headers,
                                        allow_redirects=False,
                                        timeout=aiohttp.ClientTimeout(total=self.timeout_s)) as resp:
                    await resp.read()
                    status = resp.status
            except asyncio.TimeoutError:
                error = f"no answer within {self.timeout_s:g} s"
            except (aiohttp.ClientError, OSError, ValueError) as exc:
                error = f"{type(exc).__name__}: {exc}"[:300]
        ok = status is not None and 200 <= status < 300
        if record and self.epoch.current(generation):
            self.attempts.append(Attempt(
                webhook_id=str(hook.get(ID)), event_id=event.event_id, event_type=event.type, attempt=attempt,
                status=status, error=error, refused=refusal is not None,
                latency_ms=round((time.perf_counter() - started) * 1000, 3), at=_now()))
        cause = error or f"HTTP {status}"
        message = f"delivered: HTTP {status}" if ok else (error or f"the receiver answered HTTP {status}")
        return _Outcome(ok, refusal is not None, message, cause)

    async def _refusal(self, hook: dict[str, Any], secrets: dict[str, Any]) -> str | None:
        """Why the mock will not send this delivery at all, or None."""
        url = str(hook.get(URL) or "")
        try:
            parts = urlsplit(url)
            host = (parts.hostname or "").lower()
            parts.port  # noqa: B018 - raises ValueError for a port out of range
        except ValueError:
            return "the URL cannot be parsed"
        if not host:
            return "the URL has no host"
        header = _header_refusal(hook, secrets)
        if header is not None:
            return header
        if self.host_allowed(host):
            return None
        if _is_address(host):
            addresses = [host]
        else:
            try:
                addresses = await self.lookup(host)
            except (OSError, UnicodeError):
                addresses = []
        if addresses and all(_loopback(a) for a in addresses):
            return None
        resolved = f"it resolves to {', '.join(addresses[:4])}" if addresses else "it does not resolve"
        if _is_address(host):
            resolved = "it is not a loopback address"
        return (f"deliveries to {host} are not allowed ({resolved}): only loopback addresses are, "
                f"unless the host is allowed with --delivery-allow-host")

    def host_allowed(self, host: str) -> bool:
        """Allowed whatever it resolves to (``--delivery-allow-host``)."""
        return "*" in self.allowed_hosts or host.lower() in self.allowed_hosts

    async def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=_JudgedResolver(self)))
        return self._session

    # -------------------------------------------------------------- actions behind operations

    async def send_test(self, stored: Stored, generation: int) -> tuple[int, dict[str, Any]]:
        outcome = await self._post(stored.body, stored.secrets, self._test_event(generation), 1, generation)
        return 200, {"successful": outcome.ok, "message": outcome.message}

    async def test_connection(self, body: dict[str, Any], generation: int) -> tuple[int, dict[str, Any]]:
        hook = {**body, ID: "test-connection", SECRET: None}
        secrets = {k: body[k] for k in (PASSWORD, API_KEY) if k in body}
        outcome = await self._post(hook, secrets, self._test_event(generation), 1, generation, record=False)
        return 200, {"successful": outcome.ok, "message": outcome.message}

    async def release(self, tenant: str, stored: Stored, generation: int) -> tuple[int, dict[str, Any]] | ApiProblem:
        """Send the held event once more; on success the box opens and the events behind it flow.

        One release at a time: a second one while the first is on its way is a 409, so the held
        event is never sent twice by two requests.
        """
        state = self.states.get((tenant, str(stored.body.get(ID))))
        if state is None or state.held is None:
            return problem(409, INVALID_OPERATION, "This webhook is not in the penalty box")
        if state.releasing:
            return problem(409, INVALID_OPERATION,
                           "The held payload of this webhook is being sent by another request")
        event = state.held
        state.releasing = True
        try:
            outcome = await self._post(stored.body, stored.secrets, event, state.retry_count + 1, generation)
        finally:
            state.releasing = False
        if self._live(state, generation) and state.held is event:
            if outcome.ok:
                state.held = None
                state.boxed_since = state.retry_at = state.cause = None
                state.retry_count = 0
                self._wake(state)
            elif not outcome.refused:
                state.retry_count += 1
                state.retry_at = self._retry_at(state.retry_count)
                state.cause = outcome.cause
        return 200, {"successful": outcome.ok, "message": outcome.message}

    # -------------------------------------------------------------- admin

    def snapshot(self, webhook_id: str | None = None) -> list[dict[str, Any]]:
        return [asdict(a) for a in list(self.attempts) if webhook_id is None or a.webhook_id == webhook_id]

    def lines(self, webhook_id: str | None = None) -> list[dict[str, Any]]:
        """Each webhook's delivery line: what waits, what was dropped, whether it is boxed."""
        out = []
        for state in list(self.states.values()):
            if webhook_id is not None and state.webhook_id != webhook_id:
                continue
            box = None
            if state.held is not None:
                box = {"since": state.boxed_since, "retry_count": state.retry_count, "retry_at": state.retry_at,
                       "cause": state.cause, "event_id": state.held.event_id, "event_type": state.held.type}
            out.append({"webhook_id": state.webhook_id, "tenant": state.tenant, "queued": len(state.queue),
                        "dropped": state.dropped, "delivering": state.worker is not None or state.releasing,
                        "penalty_box": box})
        return out

    async def reset(self) -> None:
        """Forget every webhook's state, queued events, held payloads and recorded attempts;
        stop every worker. Nothing is awaited: no other work runs in between."""
        self._drop_all()

    def _drop_all(self) -> list[asyncio.Task[None]]:
        states, self.states = self.states, {}
        workers = [s.worker for s in states.values() if s.worker is not None]
        for state in states.values():
            _stop(state)
        self.attempts.clear()
        return workers

    async def close(self) -> None:
        workers = self._drop_all()
        if workers:
            await asyncio.gather(*workers, return_exceptions=True)
        if self._session is not None:
            await self._session.close()


class _JudgedResolver(AbstractResolver):
    """Name resolution for the delivery client: a host that is not allowed is connected to only
    at loopback addresses, so what was judged is what is reached (even if its DNS answer changes)."""

    def __init__(self, deliveries: Deliveries) -> None:
        self._deliveries = deliveries

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        addresses = await self._deliveries.lookup(host)
        if not self._deliveries.host_allowed(host):
            addresses = [a for a in addresses if _loopback(a)]
        if not addresses:
            raise OSError(f"{host} has no address that deliveries may go to")
        return [ResolveResult(hostname=host, host=a, port=port,
                              family=socket.AF_INET6 if ":" in a else socket.AF_INET, proto=0,
                              flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV) for a in addresses]

    async def close(self) -> None:
        pass


def _stop(state: WebhookState) -> None:
    state.queue.clear()
    state.held = None
    if state.worker is not None:
        state.worker.cancel()
        state.worker = None


async def _getaddrinfo(host: str) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _is_address(host: str) -> bool:
    try:
        ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


def _loopback(address: str) -> bool:
    try:
        ip = ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)  # ::ffff:127.0.0.1 is loopback too
    return (mapped or ip).is_loopback


def _header_refusal(hook: dict[str, Any], secrets: dict[str, Any]) -> str | None:
    if hook.get(AUTHENTICATION) != "API_KEY" or not hook.get(API_HEADER):
        return None
    name = str(hook[API_HEADER])
    lowered = name.lower()
    if not _TOKEN.fullmatch(name) or lowered in _FRAMING_HEADERS or lowered.startswith(_FRAMING_PREFIX):
        return (f"the {API_HEADER} of this webhook is not a header deliveries may carry "
                f"(an HTTP token that is not a hop-by-hop or framing header)")
    value = str(secrets.get(API_KEY) or "")
    if any(c in value for c in _HEADER_VALUE_BREAKS):
        return f"the {API_KEY} of this webhook cannot be sent as a header value"
    return None


def install(engine: Engine, deliveries: Deliveries) -> None:
    """Give the engine the actions that the webhook operations name in ``spec/``, the presenter
    that fills the penalty box into every webhook answered, and end delivery lines with their
    webhooks."""
    new_secret = _secret_maker(engine)
    engine.presenters[COLLECTION] = deliveries.present
    engine.store.on_forget(deliveries.forget)

    async def keep(call: ActionCall, hook: dict[str, Any]) -> tuple[int, Any]:
        if engine.epoch.current(call.request.generation):
            await engine.store.put(call.tenant, COLLECTION, call.key, hook)
        return call.status, engine.present(call.tenant, COLLECTION, hook)

    async def roll(call: ActionCall) -> tuple[int, Any]:
        hook = dict(call.stored.body)
        hook[PREVIOUS_SECRET] = hook.get(SECRET)
        hook[PREVIOUS_SIGNING] = hook.get(SIGNING)
        hook[SECRET] = new_secret(engine.generator)
        hook[ROLLED_AT] = _now()
        return await keep(call, hook)

    async def drop_previous(call: ActionCall) -> tuple[int, Any]:
        hook = dict(call.stored.body)
        hook[PREVIOUS_SECRET] = None
        hook[PREVIOUS_SIGNING] = None
        return await keep(call, hook)

    async def send_test(call: ActionCall) -> tuple[int, Any]:
        return await deliveries.send_test(call.stored, call.request.generation)

    async def test_connection(call: ActionCall) -> tuple[int, Any]:
        return await deliveries.test_connection(call.body if isinstance(call.body, dict) else {},
                                                call.request.generation)

    async def release(call: ActionCall) -> tuple[int, Any] | ApiProblem:
        return await deliveries.release(call.tenant, call.stored, call.request.generation)

    engine.actions.update({
        "roll-secret-key": roll,
        "drop-previous-secret-key": drop_previous,
        "send-test": send_test,
        "test-connection": test_connection,
        "send-penalty-box-payload": release,
    })


def _secret_maker(engine: Engine) -> Any:
    for plan in engine.plans.values():
        for name, make in plan.generated:
            if name == SECRET:
                return make
    return lambda g: g.token("whsec_", 64)


def _selects(hook: dict[str, Any], event_type: str) -> bool:
    if hook.get(ACTIVE) is False:
        return False
    if event_type in (hook.get(EXCLUDED) or []):
        return False
    included = hook.get(INCLUDED)
    return not included or event_type in included


def _auth_headers(hook: dict[str, Any], secrets: dict[str, Any]) -> dict[str, str]:
    kind = hook.get(AUTHENTICATION)
    if kind == "PASSWORD":
        pair = f"{hook.get(USERNAME) or ''}:{secrets.get(PASSWORD) or ''}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode()}
    if kind == "API_KEY" and hook.get(API_HEADER):
        return {str(hook[API_HEADER]): str(secrets.get(API_KEY) or "")}
    return {}


def _resource_plans(engine: Engine) -> dict[str, BodyPlan]:
    """Generators for event ``data``, one per object type, from the contract's event schemas."""
    return {object_type: BodyPlan(schema) for object_type, schema in engine.contract.events.items()}


def _catalogue(engine: Engine) -> set[str]:
    """Every action that the data of a ``data`` behaviour lists (the webhook actions)."""
    found: set[str] = set()
    for op in engine.contract.operations:
        if op.behaviour is not None and op.behaviour.kind == "data":
            for group in (op.behaviour.data or {}).get("data", []):
                if isinstance(group, dict):
                    found.update(a for a in group.get("actions", []) if isinstance(a, str))
    return found


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
