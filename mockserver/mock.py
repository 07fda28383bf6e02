"""The composition root: one :class:`~mockserver.settings.Settings` in, every part wired together.

This is the only module that knows how the parts fit: the contract, the scenario book, the
engine, the state owners (store, journal, deliveries), the reset barrier they share and the
event bus that tells the dashboard what happened. The HTTP adapter (``app.py``), the CLI and
the pytest plugin build a mock here and use it; none of them constructs a part on its own.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

from . import logs
from .bus import Bus
from .contract import Contract, load_contract
from .engine import Engine, Options
from .generation import Generator
from .journal import Journal
from .lifecycle import Attempt, Deliveries, SharedDeliveries, install
from .scenarios import ScenarioBook, bundled_scenarios_dir, directories_of, load_scenarios
from .settings import Settings
from .state import Epoch
from .state.store import MemoryStore


@dataclass
class Mock:
    """Everything one running mock holds; shared by the adapter, the admin API and the plugin."""

    settings: Settings
    engine: Engine
    journal: Journal
    deliveries: Deliveries
    epoch: Epoch
    unscrub: Callable[[], None] = lambda: None
    bus: Bus = field(default_factory=Bus)
    # The state store every owner above keeps its state on, when it is shared (``--state``).
    shared: Any = None

    @property
    def book(self) -> ScenarioBook:
        return self.engine.book

    @property
    def contract(self) -> Contract:
        return self.engine.contract

    async def reset(self) -> None:
        """Back to the start-up state, as one barrier across every owner of run-time state.

        The epoch moves first: a request or delivery that started before this point finds
        itself stale and leaves no trace (no journal entry, no stored resource, no delivery).
        Every generator is reseeded, so with a seed the next test sees the same ids whatever
        ran before it.
        """
        self.epoch.advance()
        self.engine.generator.reseed()
        self.deliveries.generator.reseed()
        if self.shared is not None:
            # One step for every owner of every replica. Clearing the owners after it would clear
            # the new generation, and with it what other replicas wrote there since: only what
            # this process holds of its own is dropped.
            await self.shared.reset()
            self.book.drop_runtime()
            await self.deliveries.reset()
        else:  # none of these suspends: every step above and here is one atomic step
            await self.journal.clear()
            await self.book.reset()
            await self.deliveries.reset()
            await self.engine.store.clear()
        self.bus.publish("reset", {"scenario": await self.book.state()}, fresh_start=True)

    async def close(self) -> None:
        """Stop deliveries and let go of what this mock lent to process-wide logging."""
        await self.deliveries.close()
        if self.shared is not None:
            await self.shared.close()
        self.unscrub()


def contract_for(settings: Settings, full_check: bool = False) -> Contract:
    """The contract the settings select: OpenAPI documents with their overlays, else the bundled one."""
    overlays = settings.overlays if settings.overlays or settings.openapi else None
    return load_contract(settings.openapi, overlays, full_check=full_check)


def scenario_directories(settings: Settings) -> tuple[Path, ...]:
    """The directories the settings load scenarios from: the bundled library first when asked
    for (so a clash is reported on the user's file), then the given ones, each once."""
    bundled = bundled_scenarios_dir() if settings.bundled_scenarios else None
    return directories_of(((bundled,) if bundled is not None else ()) + settings.scenarios_dir)


def build_mock(settings: Settings | None = None, *, contract: Contract | None = None, **changes: Any) -> Mock:
    """Load, check and compile everything; raises LoadError/LoadErrors before anything listens.

    ``changes`` are :class:`Settings` fields, applied over ``settings``.
    """
    settings = (settings or Settings()).replace(**changes) if changes else (settings or Settings())
    contract = contract or contract_for(settings)
    directories = scenario_directories(settings)
    scenarios = load_scenarios(directories, contract)
    shared = _shared_state(settings)
    bus = Bus()
    book = ScenarioBook(scenarios, default=settings.scenario, directory=directories, contract=contract,
                        on_change=lambda: _tell(bus, "scenario", book.state),
                        ledger=shared.ledger() if shared is not None else None)
    epoch = Epoch()
    options = Options(strict=settings.strict, max_body_bytes=settings.max_body_bytes,
                      read_timeout_s=settings.read_timeout_s, store_limit=settings.store_limit,
                      api_keys=settings.api_keys)
    store = shared.store(settings.store_limit) if shared is not None else MemoryStore(settings.store_limit)
    engine = Engine(contract, book, Generator(settings.seed), options, store, epoch)
    secret_headers = {s.header for op in contract.operations for s in op.security}
    journal = Journal(settings.journal_limit, contract.write_only_fields(), secret_headers,
                      shared=shared.journal(settings.journal_limit) if shared is not None else None)
    for known in (*(settings.api_keys or ()), settings.admin_token, *(shared.passwords if shared else ())):
        if known:
            journal.secrets.add(known)
    # What the journal learns to hide, the logs hide too, for as long as this mock lives.
    unscrub = logs.scrub_with(journal.secrets)
    delivery_options = dict(timeout_s=settings.delivery_timeout_s, fast_retries=settings.fast_retries,
                            allowed_hosts=settings.delivery_allowed_hosts, limit=settings.journal_limit,
                            queue_limit=settings.delivery_queue_limit)
    if shared is not None:
        replica = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        deliveries: Deliveries = SharedDeliveries(engine, shared.delivery_lines(replica, settings.journal_limit),
                                                  **delivery_options)
    else:
        deliveries = Deliveries(engine, **delivery_options)
    install(engine, deliveries)
    deliveries.on_attempt = _announcer(deliveries, bus)
    return Mock(settings, engine, journal, deliveries, epoch, unscrub, bus, shared)


def _shared_state(settings: Settings) -> Any:
    """The Redis state the settings name, not yet connected (a ValueError names a bad URL without
    its password); None for state in this process."""
    if not settings.state:
        return None
    from .state.redis import RedisState, connect  # the redis client is imported only when used

    return RedisState(connect(settings.state), settings.state, settings.state_prefix)


def _tell(bus: Bus, kind: str, read: Callable[[], Awaitable[Any]]) -> None:
    """Publish what ``read`` gives, once it has it, to an open dashboard (none: nothing read)."""
    if not bus.listening:
        return

    async def tell() -> None:
        told = await read()
        if told is not None:  # nothing to tell any more (a reset came in between)
            bus.publish(kind, told)

    task = asyncio.get_running_loop().create_task(tell())
    _telling.add(task)
    task.add_done_callback(_telling.discard)


_telling: set[asyncio.Task[None]] = set()


def _announcer(deliveries: Deliveries, bus: Bus) -> Callable[[Attempt], None]:
    """Tells the bus of each delivery attempt (``delivery``), with the webhook's line.

    The event is built once the loop gets to it, after the step that recorded the attempt (and
    put the webhook in the penalty box, if it did), so it shows the line as it is after that step.
    An attempt recorded before a reset is not announced after it.
    """
    def heard(attempt: Attempt) -> None:
        generation = deliveries.epoch.value

        async def event() -> dict[str, Any] | None:
            if not deliveries.epoch.current(generation):
                return None
            lines = await deliveries.lines(attempt.webhook_id)
            return {"attempt": asdict(attempt), "webhook": lines[0] if lines else None}

        _tell(bus, "delivery", event)

    return heard
