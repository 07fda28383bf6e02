"""What a webhook means: secrets that roll, and signed deliveries of events to its URL.

This module acts on what a webhook's fields mean but names none of them: the contract's
``x-mock.deliveries`` (compiled into :class:`~mockserver.contract.deliveries.DeliverySpec`)
says which field holds the URL, the filters, the authentication and the secrets, what an event
looks like and how it is signed. Deliveries go to the URL with the configured authentication,
are signed with the secret (and the previous one while a roll is under way), honour the
active flag and the included and excluded event types, and a webhook that keeps failing
enters the penalty box, with later events queued behind it in order. A contract without a
deliveries block gets none of this: no actions, no presenter, and every event is refused.

The penalty box is server state, owned here: :class:`Deliveries` keeps one
:class:`WebhookState` per webhook and fills the penalty box fields into every webhook the
engine answers (a presenter). It never reads them back from the stored
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
import contextlib
import json
import logging
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

from .contract.deliveries import HEADER_NAME, AuthKind, DeliverySpec
from .engine import ActionCall, Engine
from .errors import INVALID_OPERATION, BAD_REQUEST, ApiProblem, problem
from .generation import BodyPlan, Generator, Maker
from .signing import signature_headers
from .state import StateUnavailable
from .state.store import Stored

log = logging.getLogger("mockserver.deliveries")

DEFAULT_QUEUE_LIMIT = 1_000
# With fast retries (for tests) every backoff is this fraction of the contract's: milliseconds, not seconds.
FAST_RETRY_SCALE = 0.005

# The contract may refuse these as a header's name in its schemas; the same rule is applied
# again where a header is sent, because a stored webhook may also come from a scripted
# answer. A header that frames or routes the request would let a credential (a client-chosen
# value) split it into two requests on the receiver's side.
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
    # What was sent: the signature and framing headers as they were, credential headers by name only.
    headers: dict[str, str] = field(default_factory=dict)


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


class Deliveries:
    """Sends events to webhooks and owns their delivery state; records every attempt
    (bounded, oldest dropped first). ``spec`` is the contract's deliveries block (None: the
    contract delivers nothing, and every event is refused)."""

    def __init__(self, engine: Engine, timeout_s: float = 10.0, fast_retries: bool = False,
                 allowed_hosts: Iterable[str] = (), limit: int = 10_000, environment: str = "mock",
                 queue_limit: int = DEFAULT_QUEUE_LIMIT) -> None:
        self.engine = engine
        self.spec: DeliverySpec | None = engine.contract.deliveries
        self.epoch = engine.epoch
        self.timeout_s = timeout_s
        self.fast_retries = fast_retries
        self.allowed_hosts = {h.lower() for h in allowed_hosts}
        self.attempts: deque[Attempt] = deque(maxlen=limit)
        # Told of each recorded attempt, once the webhook's line reflects it (the dashboard's stream).
        self.on_attempt: Callable[[Attempt], None] | None = None
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
        self.catalogue = _catalogue(engine, self.spec) if self.spec else {}

    @property
    def _spec(self) -> DeliverySpec:
        """The deliveries block, for the work only a contract with one ever asks for (see install)."""
        if self.spec is None:
            raise LookupError("this contract has no x-mock deliveries block")
        return self.spec

    # -------------------------------------------------------------- events

    async def emit(self, event_type: str, data: Any = None, platform: str | None = None) -> dict[str, Any] | ApiProblem:
        """Queue one event for every active webhook that selects it (on one platform, or all)."""
        if self.spec is None:
            return problem(400, BAD_REQUEST, "This contract delivers no events (its x-mock has no deliveries)",
                           field="type")
        if event_type not in self.catalogue:
            known = ", ".join(sorted(self.catalogue))
            return problem(400, BAD_REQUEST, f"Unknown event type {event_type!r}; known: {known}", field="type")
        if data is not None and not isinstance(data, dict):
            return problem(400, BAD_REQUEST, "data must be a JSON object", field="data")
        spec = self.spec
        generation = self.epoch.value
        event = self._event(event_type, generation, data)
        if platform is None:
            hooks = [(tenant, stored.body) for tenant, stored in await self.engine.store.everywhere(spec.collection)]
        else:  # one tenant's webhooks only: reading every tenant's would cost as much as the store holds
            tenant = f"platform:{platform}"
            bodies, _ = await self.engine.store.page(tenant, spec.collection, 1, sys.maxsize)
            hooks = [(tenant, body) for body in bodies]
        targets: list[str] = []
        if not self.epoch.current(generation):  # a reset came in between: these webhooks are gone
            return {"event_id": event.event_id, "type": event_type, "webhooks": targets}
        for tenant, body in hooks:
            if _selects(spec, body, event_type):
                webhook_id = str(body.get(spec.fields.id))
                await self._queue(tenant, webhook_id, event)
                targets.append(webhook_id)
        return {"event_id": event.event_id, "type": event_type, "webhooks": targets}

    async def _queue(self, tenant: str, webhook_id: str, event: _Event) -> None:
        self._enqueue(self._state(tenant, webhook_id), event)

    def _event(self, event_type: str, generation: int, data: dict[str, Any] | None = None) -> _Event:
        """An event with its envelope; ``data`` is merged over a generated resource of its kind.

        The envelope holds what its roles name, in the order the contract lists them; the
        random draws happen in one fixed order whatever that is, so a seed gives the same ids.
        """
        event = self._spec.event
        plan = self.resources.get(self.catalogue.get(event_type, ""))
        resource = plan.render(self.generator, None) if plan else {}
        if data:
            resource = {**resource, **data}
        rid = self.engine.contract.request_id
        values = {"createdAt": _now(), "type": event_type,
                  "requestId": self.generator.token(rid.prefix, rid.length),
                  "environment": self.environment, "data": resource}
        envelope = {name: values[role] for role, name in event.envelope}
        return _Event(self.generator.token(event.id.prefix, event.id.length), event_type,
                      json.dumps(envelope, separators=(",", ":")).encode(), generation)

    def _test_event(self, generation: int, hook: dict[str, Any] | None = None) -> _Event:
        """What send-test and test-connection send: an event of the first type (in catalogue
        order) that the webhook selects, whether active or not; the first of all when it
        selects none."""
        kinds = sorted(self.catalogue)
        chosen = next((kind for kind in kinds if hook is not None and _selects(self._spec, hook, kind, True)), None)
        return self._event(chosen or (kinds[0] if kinds else "test"), generation)

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
                    failed = await self._deliver(state.tenant, state.webhook_id, event,
                                                 lambda: self._live(state, event.generation))
                    if failed is not None:
                        self._enter_box(state, event, failed.cause)
                except asyncio.CancelledError:
                    raise
                except Exception:  # one bad event must not stop this webhook's line
                    log.exception("delivery of %s to webhook %s failed unexpectedly", event.event_id,
                                  state.webhook_id)
        finally:
            if state.worker is asyncio.current_task():
                state.worker = None

    async def _deliver(self, tenant: str, webhook_id: str, event: _Event,
                       live: Callable[[], bool]) -> _Outcome | None:
        """Up to the contract's attempts (each with the webhook as it is then); the last failure
        when every attempt failed (the event then belongs in the penalty box), else None."""
        spec = self._spec
        attempts = spec.retries.attempts
        outcome: _Outcome | None = None
        for attempt in range(1, attempts + 1):
            stored = await self.engine.store.get(tenant, spec.collection, webhook_id)
            if stored is None or stored.body.get(spec.fields.active) is False or not live():
                return None
            outcome = await self._post(stored.body, stored.secrets, event, attempt, event.generation)
            if outcome.ok or outcome.refused or not live():
                return None
            if attempt < attempts:
                await asyncio.sleep(self._backoff(attempt))
        return outcome

    def _backoff(self, attempt: int) -> float:
        return self._spec.retries.delay(attempt) * (FAST_RETRY_SCALE if self.fast_retries else 1.0)

    def _enter_box(self, state: WebhookState, event: _Event, cause: str) -> None:
        attempts = self._spec.retries.attempts
        state.boxed_since = _now()
        state.retry_count = attempts
        state.retry_at = self._retry_at(attempts)
        state.cause = cause
        state.held = event
        log.warning("webhook %s entered the penalty box after %d failed attempts: %s",
                    state.webhook_id, attempts, cause)

    def _retry_at(self, attempts: int) -> str:
        at = datetime.now(timezone.utc) + timedelta(seconds=self._backoff(attempts + 1))
        return at.replace(microsecond=0).isoformat().replace("+00:00", "Z")

    async def present(self, tenant: str, bodies: list[dict[str, Any]], fresh: bool = False) -> None:
        """Webhooks as answered: the penalty box as this owner knows it, whatever the bodies say
        (``fresh``: just created or deleted, so there is none)."""
        id_field = self._spec.fields.id
        for body in bodies:
            state = self.states.get((tenant, str(body.get(id_field))))
            if state is None or state.held is None:
                self._fill_box(body, None, None)
            else:
                self._fill_box(body, state.boxed_since, {
                    "retryCount": state.retry_count, "retryAt": state.retry_at, "cause": state.cause,
                    "payload": state.held.payload.decode()})

    def _fill_box(self, body: dict[str, Any], since: str | None, held: dict[str, Any] | None) -> None:
        box = self._spec.penalty_box
        body[box.since] = since
        body[box.data] = None if held is None else {name: held[role] for role, name in box.fields}

    def forget(self, tenant: str, collection: str, key: str) -> None:
        """A resource left the store (deleted or evicted): a webhook's line ends with it."""
        if collection == self._spec.collection:
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
        shown: dict[str, str] = {}
        spec = self._spec
        refusal = await self._refusal(hook, secrets)
        if not self.epoch.current(generation):  # reset while the name was being looked up
            return _Outcome(False, False, "the mock was reset before this delivery was sent", None)
        if refusal is not None:
            error = refusal
        else:
            keys = [hook.get(spec.secrets.current) or "", hook.get(spec.secrets.previous) or ""]
            credentials = _auth_headers(_auth_kind(spec, hook), hook, secrets)
            headers = {"Content-Type": "application/json", "User-Agent": "mockserver-deliveries",
                       **signature_headers(spec.signing, keys, event.payload), **credentials}
            shown = {**headers, **{name: "[redacted]" for name in credentials}}
            try:
                session = await self._client()
                async with session.post(str(hook.get(spec.fields.url)), data=event.payload, headers=headers,
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
            recorded = Attempt(
                webhook_id=str(hook.get(spec.fields.id)), event_id=event.event_id, event_type=event.type, attempt=attempt,
                status=status, error=error, refused=refusal is not None,
                latency_ms=round((time.perf_counter() - started) * 1000, 3), at=_now(), headers=shown)
            await self._record(recorded)
            if self.on_attempt is not None:
                self.on_attempt(recorded)
        cause = error or f"HTTP {status}"
        message = f"delivered: HTTP {status}" if ok else (error or f"the receiver answered HTTP {status}")
        return _Outcome(ok, refusal is not None, message, cause)

    async def _refusal(self, hook: dict[str, Any], secrets: dict[str, Any]) -> str | None:
        """Why the mock will not send this delivery at all, or None."""
        url = str(hook.get(self._spec.fields.url) or "")
        try:
            parts = urlsplit(url)
            host = (parts.hostname or "").lower()
            parts.port  # noqa: B018 - raises ValueError for a port out of range
        except ValueError:
            return "the URL cannot be parsed"
        if not host:
            return "the URL has no host"
        header = _header_refusal(_auth_kind(self._spec, hook), hook, secrets)
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
        outcome = await self._post(stored.body, stored.secrets, self._test_event(generation, stored.body), 1,
                                   generation)
        return 200, self._result(outcome)

    async def test_connection(self, body: dict[str, Any], generation: int) -> tuple[int, dict[str, Any]]:
        """A webhook that is not stored: sent with the credentials of the body, unsigned, not recorded."""
        spec = self._spec
        hook = {**body, spec.fields.id: "test-connection", spec.secrets.current: None}
        secrets = {k: body[k] for k in spec.authentication.credentials() if k in body}
        outcome = await self._post(hook, secrets, self._test_event(generation, hook), 1, generation, record=False)
        return 200, self._result(outcome)

    def _result(self, outcome: _Outcome) -> dict[str, Any]:
        result = self._spec.result
        return {result.successful: outcome.ok, result.message: outcome.message}

    async def release(self, tenant: str, stored: Stored, generation: int) -> tuple[int, dict[str, Any]] | ApiProblem:
        """Send the held event once more; on success the box opens and the events behind it flow.

        One release at a time: a second one while the first is on its way is a 409, so the held
        event is never sent twice by two requests.
        """
        state = self.states.get((tenant, str(stored.body.get(self._spec.fields.id))))
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
        return 200, self._result(outcome)

    # -------------------------------------------------------------- admin

    async def _record(self, attempt: Attempt) -> None:
        self.attempts.append(attempt)

    async def snapshot(self, webhook_id: str | None = None) -> list[dict[str, Any]]:
        return [asdict(a) for a in list(self.attempts) if webhook_id is None or a.webhook_id == webhook_id]

    async def lines(self, webhook_id: str | None = None) -> list[dict[str, Any]]:
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

    def start(self) -> None:
        """Called once the server's loop runs (nothing to start in memory)."""

    async def close(self) -> None:
        workers = self._drop_all()
        if workers:
            await asyncio.gather(*workers, return_exceptions=True)
        if self._session is not None:
            await self._session.close()


class SharedDeliveries(Deliveries):
    """Deliveries whose lines are shared by every replica (``state.redis.RedisDeliveryLines``).

    An event is queued on its webhook's line in the shared store; whichever replica holds the
    line's lease sends the events one by one, in order, renewing the lease as it goes, and takes
    an event off the line only once it was delivered (or moved into the penalty box). A replica
    that dies stops renewing; once its lease expires, another replica's sweep claims the line and
    sends the head event again: at least once, in order, one replica at a time. The penalty box,
    what was dropped and the attempts are shared too, so every replica answers the same.
    """

    LEASE_MS = 3_000
    SWEEP_S = 0.5

    def __init__(self, engine: Engine, lines: Any, **options: Any) -> None:
        super().__init__(engine, **options)
        self.shared = lines
        self.working: dict[bytes, asyncio.Task[None]] = {}
        self._ending: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._sweeper is None and self.spec is not None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    async def _sweep(self) -> None:
        """Claim every line with events waiting that nobody holds: new ones a replica did not
        start at once, and those whose holder died."""
        while True:
            await asyncio.sleep(self.SWEEP_S)
            try:
                for key in await self.shared.pending():
                    await self._claim(key)
            except StateUnavailable:
                pass  # the store is away: the next sweep tries again
            except Exception:
                log.exception("the delivery sweep failed")

    async def _queue(self, tenant: str, webhook_id: str, event: _Event) -> None:
        queued = await self.shared.enqueue(tenant, webhook_id, _encoded(event), self.queue_limit)
        if queued == -1:
            log.warning("webhook %s has %d events waiting: later ones are dropped (and counted)",
                        webhook_id, self.queue_limit)
        await self._claim(_line_key(tenant, webhook_id))

    async def _claim(self, key: bytes) -> None:
        if key not in self.working and await self.shared.claim(key, self.LEASE_MS):
            if key not in self.working:
                self.working[key] = asyncio.get_running_loop().create_task(self._work_line(key))

    async def _work_line(self, key: bytes) -> None:
        tenant, webhook_id = _line_of(key)
        lost = asyncio.Event()
        renewer = asyncio.get_running_loop().create_task(self._renew(key, lost))
        try:
            while not lost.is_set():
                raw = await self.shared.head(key, self.LEASE_MS)
                if raw is None:
                    break
                event = _decoded(raw, self.epoch.value)
                try:
                    failed = await self._deliver(tenant, webhook_id, event, lambda: not lost.is_set())
                except (asyncio.CancelledError, StateUnavailable):
                    raise
                except Exception:  # one bad event must not stop this webhook's line
                    log.exception("delivery of %s to webhook %s failed unexpectedly", event.event_id, webhook_id)
                    failed = None
                if lost.is_set():
                    break  # another replica holds the line now: it sends this event again
                if failed is None:
                    await self.shared.ack(key, raw)
                    continue
                attempts = self._spec.retries.attempts
                await self.shared.box(key, raw, _now(), attempts, self._retry_at(attempts), failed.cause)
                log.warning("webhook %s entered the penalty box after %d failed attempts: %s",
                            webhook_id, attempts, failed.cause)
                break
        except StateUnavailable as exc:
            log.warning("deliveries to webhook %s paused: %s", webhook_id, exc)
        finally:
            renewer.cancel()
            if self.working.get(key) is asyncio.current_task():
                del self.working[key]
            # Best effort: a lease not let go expires by itself, and another replica takes the line.
            with contextlib.suppress(Exception):
                await self.shared.let_go(key)

    async def _renew(self, key: bytes, lost: asyncio.Event) -> None:
        while True:
            await asyncio.sleep(self.LEASE_MS / 3000)
            try:
                if not await self.shared.renew(key, self.LEASE_MS):
                    lost.set()
                    return
            except StateUnavailable:
                pass  # renewed on the next turn, or lost if the store stays away past the lease

    async def present(self, tenant: str, bodies: list[dict[str, Any]], fresh: bool = False) -> None:
        id_field = self._spec.fields.id
        if fresh:
            for body in bodies:
                self._fill_box(body, None, None)
            return
        if not bodies:
            return
        lines = await self.shared.lines([_line_key(tenant, str(body.get(id_field))) for body in bodies])
        for body, line in zip(bodies, lines):
            if "held" not in line:
                self._fill_box(body, None, None)
            else:
                held = _decoded(line["held"], self.epoch.value)
                self._fill_box(body, line.get("since"), {
                    "retryCount": int(line["count"]), "retryAt": line.get("retry_at"), "cause": line.get("cause"),
                    "payload": held.payload.decode()})

    def forget(self, tenant: str, collection: str, key: str) -> None:
        if collection != self._spec.collection:
            return
        line = _line_key(tenant, key)
        worker = self.working.pop(line, None)
        if worker is not None:
            worker.cancel()

        async def end() -> None:
            with contextlib.suppress(StateUnavailable):
                await self.shared.end_line(tenant, key)

        task = asyncio.get_running_loop().create_task(end())
        self._ending.add(task)  # held until done: a task nobody references may be collected mid-way
        task.add_done_callback(self._ending.discard)

    async def release(self, tenant: str, stored: Stored, generation: int) -> tuple[int, dict[str, Any]] | ApiProblem:
        key = _line_key(tenant, str(stored.body.get(self._spec.fields.id)))
        started = await self.shared.start_release(key, int((self.timeout_s + 5) * 1000))
        if started < 0:
            return problem(409, INVALID_OPERATION, "This webhook is not in the penalty box")
        if started == 0:
            return problem(409, INVALID_OPERATION, "The held payload of this webhook is being sent by another request")
        raw, count, ok, retry_at, cause = "", 0, False, "", ""
        try:  # whatever happens from here, the release ends (or it would hold the line for its lease)
            line = (await self.shared.lines([key]))[0]
            raw, count = line.get("held") or "", int(line.get("count") or 0)
            if not raw:  # released by another replica just before this one started
                return problem(409, INVALID_OPERATION, "This webhook is not in the penalty box")
            retry_at, cause = line.get("retry_at") or "", line.get("cause") or ""
            outcome = await self._post(stored.body, stored.secrets, _decoded(raw, generation), count + 1, generation)
            ok = outcome.ok
            if not ok and not outcome.refused:
                count, retry_at, cause = count + 1, self._retry_at(count + 1), outcome.cause
        finally:
            await self.shared.end_release(key, raw, ok, count, retry_at, cause)
        if ok:
            await self._claim(key)
        return 200, self._result(outcome)

    async def _record(self, attempt: Attempt) -> None:
        await self.shared.record(asdict(attempt))

    async def snapshot(self, webhook_id: str | None = None) -> list[dict[str, Any]]:
        return [a for a in await self.shared.attempts() if webhook_id is None or a["webhook_id"] == webhook_id]

    async def lines(self, webhook_id: str | None = None) -> list[dict[str, Any]]:
        out = []
        for line in await self.shared.lines():
            if webhook_id is not None and line["webhook_id"] != webhook_id:
                continue
            box = None
            if "held" in line:
                held = _decoded(line["held"], self.epoch.value)
                box = {"since": line.get("since"), "retry_count": int(line["count"]), "retry_at": line.get("retry_at"),
                       "cause": line.get("cause"), "event_id": held.event_id, "event_type": held.type}
            out.append({"webhook_id": line["webhook_id"], "tenant": line["tenant"], "queued": line["queued"],
                        "dropped": int(line.get("dropped") or 0), "delivering": line["busy"], "penalty_box": box})
        return sorted(out, key=lambda line: (line["tenant"], line["webhook_id"]))

    def _drop_all(self) -> list[asyncio.Task[None]]:
        workers = super()._drop_all()
        working, self.working = self.working, {}
        for task in working.values():
            task.cancel()
        return workers + list(working.values())

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        await super().close()


def _line_key(tenant: str, webhook_id: str) -> bytes:
    from .state.redis import webhook_key

    return webhook_key(tenant, webhook_id)


def _line_of(key: bytes) -> tuple[str, str]:
    from .state.redis import webhook_of

    return webhook_of(key)


def _encoded(event: _Event) -> str:
    return json.dumps({"id": event.event_id, "type": event.type, "payload": event.payload.decode()},
                      separators=(",", ":"))


def _decoded(raw: str, generation: int) -> _Event:
    event = json.loads(raw)
    return _Event(event["id"], event["type"], event["payload"].encode(), generation)


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


def _auth_kind(spec: DeliverySpec, hook: dict[str, Any]) -> AuthKind | None:
    """How this webhook authenticates its deliveries (None: a value the contract does not list)."""
    return spec.authentication.kinds.get(str(hook.get(spec.authentication.field)))


def _header_refusal(kind: AuthKind | None, hook: dict[str, Any], secrets: dict[str, Any]) -> str | None:
    if kind is None or kind.scheme != "header" or not kind.name or not kind.value or not hook.get(kind.name):
        return None
    name = str(hook[kind.name])
    lowered = name.lower()
    if not HEADER_NAME.fullmatch(name) or lowered in _FRAMING_HEADERS or lowered.startswith(_FRAMING_PREFIX):
        return (f"the {kind.name} of this webhook is not a header deliveries may carry "
                f"(an HTTP token that is not a hop-by-hop or framing header)")
    value = str(secrets.get(kind.value) or "")
    if any(c in value for c in _HEADER_VALUE_BREAKS):
        return f"the {kind.value} of this webhook cannot be sent as a header value"
    return None


def install(engine: Engine, deliveries: Deliveries) -> None:
    """Give the engine the actions that the webhook operations name in ``spec/``, the presenter
    that fills the penalty box into every webhook answered, and end delivery lines with their
    webhooks. A contract without a deliveries block gets none of them."""
    spec = deliveries.spec
    if spec is None:
        return
    collection, secret = spec.collection, spec.secrets
    engine.presenters[collection] = deliveries.present
    engine.store.on_forget(deliveries.forget)

    async def keep(call: ActionCall, hook: dict[str, Any]) -> tuple[int, Any]:
        if engine.epoch.current(call.request.generation):
            await engine.store.put(call.tenant, collection, call.key, hook)
        return call.status, await engine.present(call.tenant, collection, hook)

    async def roll(call: ActionCall) -> tuple[int, Any]:
        hook = dict(call.stored.body)
        hook[secret.previous] = hook.get(secret.current)
        hook[secret.previous_protocol] = hook.get(secret.protocol)
        hook[secret.current] = _secret_maker(call, spec)(engine.generator)
        hook[secret.rolled_at] = _now()
        return await keep(call, hook)

    async def drop_previous(call: ActionCall) -> tuple[int, Any]:
        hook = dict(call.stored.body)
        hook[secret.previous] = None
        hook[secret.previous_protocol] = None
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


def _secret_maker(call: ActionCall, spec: DeliverySpec) -> Maker:
    """A rolled secret is made as the answer of the rolling operation makes the secret field (so
    it fits that schema); the deliveries block says how when the schema gives no generator."""
    plan = call.engine.plans.get((call.op.operation_id, call.status))
    for name, make in plan.generated if plan is not None else ():
        if name == spec.secrets.current:
            return make
    new = spec.secrets.new
    return lambda g: g.token(new.prefix, new.length)


def _selects(spec: DeliverySpec, hook: dict[str, Any], event_type: str, inactive_too: bool = False) -> bool:
    fields = spec.fields
    if hook.get(fields.active) is False and not inactive_too:
        return False
    if event_type in (hook.get(fields.excluded) or []):
        return False
    included = hook.get(fields.included)
    return not included or event_type in included


def _auth_headers(kind: AuthKind | None, hook: dict[str, Any], secrets: dict[str, Any]) -> dict[str, str]:
    if kind is None:
        return {}
    if kind.scheme == "basic" and kind.username and kind.password:
        pair = f"{hook.get(kind.username) or ''}:{secrets.get(kind.password) or ''}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode()}
    if kind.scheme == "header" and kind.name and kind.value and hook.get(kind.name):
        return {str(hook[kind.name]): str(secrets.get(kind.value) or "")}
    return {}


def _resource_plans(engine: Engine) -> dict[str, BodyPlan]:
    """Generators for event ``data``, one per object type, from the contract's event schemas."""
    return {object_type: BodyPlan(schema) for object_type, schema in engine.contract.events.items()}


def _catalogue(engine: Engine, spec: DeliverySpec) -> dict[str, str]:
    """Every event type that the answer of a ``data`` behaviour lists, with the kind of object
    its data is (where the deliveries block says the groups, kinds and event types are)."""
    where = spec.event.catalogue
    found: dict[str, str] = {}
    for op in engine.contract.operations:
        if op.behaviour is None or op.behaviour.kind != "data" or not isinstance(op.behaviour.data, dict):
            continue
        for group in op.behaviour.data.get(where.groups) or []:
            if isinstance(group, dict) and isinstance(group.get(where.events), list):
                kind = str(group.get(where.kind, ""))
                found.update((event, kind) for event in group[where.events] if isinstance(event, str))
    return found


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
