"""What a webhook means: secrets that roll, and signed deliveries of events to its URL.

This is the one module that names webhook fields, because it acts on what they mean:
deliveries go to ``url`` with the configured authentication, are signed with
``secret_key`` (and ``previous_secret_key`` while a roll is under way), honour
``active``, ``included_actions`` and ``excluded_actions``, and a webhook that keeps
failing enters the penalty box (``penalty_box``, ``penalty_box_data``), with later events
queued behind it in order. Everything else about webhooks is read from ``spec/``.

Deliveries only go to loopback addresses unless more hosts are allowed: a mock must not
be turned into a way to make requests to arbitrary machines.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections import deque
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from ipaddress import ip_address
from typing import Any, Iterable
from urllib.parse import urlsplit

import aiohttp

from .engine import ActionCall, Engine
from .errors import INVALID_OPERATION, BAD_REQUEST, ApiProblem, problem
from .generation import BodyPlan, Generator
from .signing import signature_headers
from .store import Stored

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
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})


@dataclass
class Attempt:
    """One try at delivering one event to one webhook."""

    webhook_id: str
    event_id: str
    event_type: str
    attempt: int
    status: int | None
    error: str | None
    latency_ms: float
    at: str


@dataclass
class _Event:
    event_id: str
    type: str
    payload: bytes


class _Line:
    """The ordered queue of one webhook, and whether it is held in the penalty box."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[_Event] = asyncio.Queue()
        self.released = asyncio.Event()
        self.held: _Event | None = None
        self.worker: asyncio.Task[None] | None = None


class Deliveries:
    """Sends events to webhooks; records every attempt (bounded, oldest dropped first)."""

    def __init__(self, engine: Engine, timeout_s: float = 10.0, fast_retries: bool = False,
                 allowed_hosts: Iterable[str] = (), limit: int = 10_000, environment: str = "mock") -> None:
        self.engine = engine
        self.timeout_s = timeout_s
        self.fast_retries = fast_retries
        self.allowed_hosts = {h.lower() for h in allowed_hosts}
        self.attempts: deque[Attempt] = deque(maxlen=limit)
        self.environment = environment
        self.lines: dict[tuple[str, str], _Line] = {}
        self._session: aiohttp.ClientSession | None = None
        self.resources = _resource_plans(engine)
        # Event data draws from its own generator: emitting events (an admin call) must not
        # change the seeded sequence of contract answers.
        self.generator = Generator(engine.generator.seed)
        self.catalogue = _catalogue(engine)

    # -------------------------------------------------------------- events

    def emit(self, event_type: str, data: Any = None, platform: str | None = None) -> dict[str, Any] | ApiProblem:
        """Queue one event for every active webhook that selects it (on one platform, or all)."""
        if event_type not in self.catalogue:
            known = ", ".join(sorted(self.catalogue))
            return problem(400, BAD_REQUEST, f"Unknown event type {event_type!r}; known: {known}", field="type")
        if data is not None and not isinstance(data, dict):
            return problem(400, BAD_REQUEST, "data must be a JSON object", field="data")
        event = self._event(event_type, data)
        targets = []
        for tenant, stored in self.engine.store.everywhere(COLLECTION):
            if platform is not None and tenant != f"platform:{platform}":
                continue
            if _selects(stored.body, event_type):
                self._line(tenant, str(stored.body.get(ID))).queue.put_nowait(event)
                targets.append(stored.body.get(ID))
        return {"event_id": event.event_id, "type": event_type, "webhooks": targets}

    def _event(self, event_type: str, data: dict[str, Any] | None = None) -> _Event:
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
                      json.dumps(envelope, separators=(",", ":")).encode())

    def _test_event(self) -> _Event:
        """What send-test and test-connection send: an event of the first action in the catalogue."""
        return self._event(min(self.catalogue, default="TEST.EVENT"))

    def _line(self, tenant: str, webhook_id: str) -> _Line:
        key = (tenant, webhook_id)
        line = self.lines.get(key)
        if line is None:
            line = self.lines[key] = _Line()
            line.worker = asyncio.get_running_loop().create_task(self._work(tenant, webhook_id, line))
        return line

    async def _work(self, tenant: str, webhook_id: str, line: _Line) -> None:
        """Deliver this webhook's events one by one, in order; hold them all while it is in the box."""
        while True:
            event = await line.queue.get()
            try:
                await self._deliver(tenant, webhook_id, line, event)
            except asyncio.CancelledError:
                raise
            except Exception:  # one bad event must not stop this webhook's line
                log.exception("delivery of %s to webhook %s failed unexpectedly", event.event_id, webhook_id)

    async def _deliver(self, tenant: str, webhook_id: str, line: _Line, event: _Event) -> None:
        """Up to MAX_ATTEMPTS tries; then the penalty box, holding this line until released."""
        stored = self.engine.store.get(tenant, COLLECTION, webhook_id)
        if stored is None or stored.body.get(ACTIVE) is False:
            return
        for attempt in range(1, MAX_ATTEMPTS + 1):
            ok, _ = await self._send(stored, event, attempt)
            if ok:
                return
            if attempt < MAX_ATTEMPTS:
                await asyncio.sleep(self._backoff(attempt))
        self._enter_box(stored, event, MAX_ATTEMPTS)
        line.held = event
        line.released.clear()
        await line.released.wait()  # send-penalty-box-payload delivers it and lets the rest flow

    def _backoff(self, attempt: int) -> float:
        return (0.005 if self.fast_retries else 1.0) * 2 ** (attempt - 1)

    def _enter_box(self, stored: Stored, event: _Event, attempts: int) -> None:
        last = next((a for a in reversed(self.attempts) if a.event_id == event.event_id), None)
        cause = (last.error or f"HTTP {last.status}") if last else "delivery failed"
        retry_at = datetime.now(timezone.utc) + timedelta(seconds=self._backoff(attempts + 1))
        stored.body[PENALTY_BOX] = _now()
        stored.body[PENALTY_DATA] = {
            "retry_count": attempts,
            "retry_at": retry_at.replace(microsecond=0).isoformat().replace("+00:00", "Z"),
            "cause": cause,
            "payload": event.payload.decode(),
        }
        log.warning("webhook %s entered the penalty box after %d failed attempts: %s",
                    stored.body.get(ID), attempts, cause)

    # -------------------------------------------------------------- sending

    async def _send(self, stored: Stored, event: _Event, attempt: int) -> tuple[bool, str]:
        return await self._post(stored.body, stored.secrets, event, attempt, record=True)

    async def _post(self, hook: dict[str, Any], secrets: dict[str, Any], event: _Event, attempt: int,
                    record: bool) -> tuple[bool, str]:
        url = str(hook.get(URL) or "")
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        refusal = self._refusal(url)
        if refusal:
            error = refusal
        else:
            headers = {"Content-Type": "application/json", "User-Agent": "mockserver-deliveries",
                       **signature_headers([hook.get(SECRET) or "", hook.get(PREVIOUS_SECRET) or ""], event.payload),
                       **_auth_headers(hook, secrets)}
            try:
                session = await self._client()
                async with session.post(url, data=event.payload, headers=headers, allow_redirects=False,
                                        timeout=aiohttp.ClientTimeout(total=self.timeout_s)) as resp:
                    await resp.read()
                    status = resp.status
            except asyncio.TimeoutError:
                error = f"no answer within {self.timeout_s:g} s"
            except (aiohttp.ClientError, OSError, ValueError) as exc:
                error = f"{type(exc).__name__}: {exc}"[:300]
        ok = status is not None and 200 <= status < 300
        if record:
            self.attempts.append(Attempt(
                webhook_id=str(hook.get(ID)), event_id=event.event_id, event_type=event.type, attempt=attempt,
                status=status, error=error, latency_ms=round((time.perf_counter() - started) * 1000, 3), at=_now()))
        message = f"delivered: HTTP {status}" if ok else (error or f"the receiver answered HTTP {status}")
        return ok, message

    def _refusal(self, url: str) -> str | None:
        try:
            host = (urlsplit(url).hostname or "").lower()
        except ValueError:
            return "the URL cannot be parsed"
        if not host:
            return "the URL has no host"
        if "*" in self.allowed_hosts or host in self.allowed_hosts or host in LOOPBACK_NAMES:
            return None
        try:
            if ip_address(host).is_loopback:
                return None
        except ValueError:
            pass
        return (f"deliveries to {host} are not allowed: only loopback addresses are, "
                f"unless the host is allowed with --delivery-allow-host")

    async def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    # -------------------------------------------------------------- actions behind operations

    async def send_test(self, stored: Stored) -> tuple[int, dict[str, Any]]:
        ok, message = await self._post(stored.body, stored.secrets, self._test_event(), 1, record=True)
        return 200, {"successful": ok, "message": message}

    async def test_connection(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        hook = {**body, ID: "test-connection", SECRET: None}
        secrets = {k: body[k] for k in (PASSWORD, API_KEY) if k in body}
        ok, message = await self._post(hook, secrets, self._test_event(), 1, record=False)
        return 200, {"successful": ok, "message": message}

    async def release(self, tenant: str, stored: Stored) -> tuple[int, dict[str, Any]] | ApiProblem:
        line = self.lines.get((tenant, str(stored.body.get(ID))))
        if stored.body.get(PENALTY_BOX) is None or line is None or line.held is None:
            return problem(409, INVALID_OPERATION, "This webhook is not in the penalty box")
        ok, message = await self._send(stored, line.held, (stored.body.get(PENALTY_DATA) or {}).get("retry_count", 0) + 1)
        if ok:
            stored.body[PENALTY_BOX] = None
            stored.body[PENALTY_DATA] = None
            line.held = None
            line.released.set()
        return 200, {"successful": ok, "message": message}

    # -------------------------------------------------------------- admin

    def snapshot(self, webhook_id: str | None = None) -> list[dict[str, Any]]:
        return [asdict(a) for a in list(self.attempts) if webhook_id is None or a.webhook_id == webhook_id]

    def reset(self) -> None:
        """Forget queued events, held payloads and recorded attempts; stop every worker."""
        lines, self.lines = self.lines, {}
        for line in lines.values():
            if line.worker is not None:
                line.worker.cancel()
        self.attempts.clear()

    async def close(self) -> None:
        self.reset()
        if self._session is not None:
            await self._session.close()


def install(engine: Engine, deliveries: Deliveries) -> None:
    """Give the engine the actions that the webhook operations name in ``spec/``."""
    new_secret = _secret_maker(engine)

    def roll(call: ActionCall) -> tuple[int, Any]:
        hook = call.stored.body
        hook[PREVIOUS_SECRET] = hook.get(SECRET)
        hook[PREVIOUS_SIGNING] = hook.get(SIGNING)
        hook[SECRET] = new_secret(engine.generator)
        hook[ROLLED_AT] = _now()
        return call.status, hook

    def drop_previous(call: ActionCall) -> tuple[int, Any]:
        call.stored.body[PREVIOUS_SECRET] = None
        return call.status, call.stored.body

    engine.actions.update({
        "roll-secret-key": roll,
        "drop-previous-secret-key": drop_previous,
        "send-test": lambda call: deliveries.send_test(call.stored),
        "test-connection": lambda call: deliveries.test_connection(call.body if isinstance(call.body, dict) else {}),
        "send-penalty-box-payload": lambda call: deliveries.release(call.tenant, call.stored),
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
    """Generators for event ``data``, from ``spec/schemas/events/<object type>.json``."""
    plans = {}
    for name, schema in engine.contract.schemas.items():
        if name.startswith("schemas/events/"):
            object_type = name.rsplit("/", 1)[1].removesuffix(".json").upper()
            plans[object_type] = BodyPlan(schema)
    return plans


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
