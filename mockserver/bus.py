"""An in-process event bus: what just happened in the mock, for whoever is watching (the dashboard).

Publishing is synchronous and never waits: an event is encoded once, as a Server-Sent Events
frame, and handed to every subscriber's own bounded queue. A subscriber that does not keep up
(its queue holds ``limit`` events or ``max_bytes`` bytes) is dropped on the spot: its queue is
emptied, it is closed, and its ``on_drop`` is called (the stream cuts the connection), so a slow
or vanished client costs bounded memory and never slows a request down.

The bus also keeps the last few events it published (bounded the same way), so a client that
reconnects with the id of the last event it saw gets what it missed. Nothing is encoded or kept
while nobody listens: publishers that would have to build their data ask :attr:`Bus.listening`
first, which keeps the request path as cheap as it was without a dashboard.

Everything runs on the server's event loop.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

from . import jsoncodec

__all__ = ["Bus", "Event", "Subscription"]

QUEUE_LIMIT = 512  # events waiting for one subscriber before it is dropped
QUEUE_BYTES = 8 * 1024 * 1024  # bytes waiting for one subscriber before it is dropped
HISTORY_LIMIT = 256  # events kept for clients that reconnect
HISTORY_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Event:
    """One published event: its id (increasing), its kind and its SSE frame."""

    id: int
    kind: str
    frame: bytes


def frame(event_id: int, kind: str, data: Any) -> bytes:
    """``id:``, ``event:`` and one ``data:`` line (compact JSON never holds a raw newline)."""
    try:
        text = jsoncodec.dumps(data)
    except (TypeError, ValueError):  # a lone surrogate (a header that was not UTF-8): escaped, not refused
        text = json.dumps(data, separators=(",", ":"), default=str).encode("ascii")
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (event_id, kind.encode(), text)


class Subscription:
    """One subscriber's queue; iterate it (or :meth:`get`) until it ends.

    It ends when closed: by the subscriber, by the bus when it falls behind (``dropped`` is then
    true) or when the bus closes (the server stops).
    """

    def __init__(self, bus: Bus, limit: int, max_bytes: int, on_drop: Callable[[], None] | None) -> None:
        self._bus = bus
        self.limit = max(1, limit)
        self.max_bytes = max(1, max_bytes)
        self.on_drop = on_drop
        self._items: deque[Event] = deque()
        self._bytes = 0
        self._ready = asyncio.Event()
        self.closed = False
        self.dropped = False

    def __len__(self) -> int:
        return len(self._items)

    @property
    def pending_bytes(self) -> int:
        return self._bytes

    def offer(self, event: Event) -> None:
        """Queue ``event``; a subscriber that is this far behind is dropped instead."""
        if self.closed:
            return
        if len(self._items) >= self.limit or self._bytes + len(event.frame) > self.max_bytes:
            self.drop()
            return
        self._items.append(event)
        self._bytes += len(event.frame)
        self._ready.set()

    def drop(self) -> None:
        """Close this subscriber because it fell behind."""
        if self.closed:
            return
        self.dropped = True
        self.close()
        if self.on_drop is not None:
            self.on_drop()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._items.clear()
        self._bytes = 0
        self._ready.set()
        self._bus._forget(self)

    async def get(self) -> Event | None:
        """The next event, or None once this subscription has ended."""
        while not self._items:
            if self.closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        event = self._items.popleft()
        self._bytes -= len(event.frame)
        return event


class Bus:
    """Publish events by kind; every subscriber gets each one, in order, or is dropped."""

    def __init__(self, limit: int = QUEUE_LIMIT, max_bytes: int = QUEUE_BYTES,
                 history: int = HISTORY_LIMIT, history_bytes: int = HISTORY_BYTES) -> None:
        self.limit = limit
        self.max_bytes = max_bytes
        self._subscribers: list[Subscription] = []
        self._history: deque[Event] = deque()
        self._history_limit = max(0, history)
        self._history_bytes_limit = history_bytes
        self._history_bytes = 0
        self._last_id = 0
        self.dropped = 0  # subscribers dropped for falling behind, since start

    @property
    def listening(self) -> bool:
        """True while someone subscribes: only then is an event worth building."""
        return bool(self._subscribers)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def publish(self, kind: str, data: Any, *, fresh_start: bool = False) -> None:
        """Hand an event to every subscriber; returns at once and never waits.

        ``fresh_start`` (a reset): the events kept for reconnecting clients are forgotten,
        whether anyone listens or not, so nothing from before it is replayed; the event itself
        is not kept either (replayed later, it would wipe what the client read after it).
        """
        if fresh_start:
            self._history.clear()
            self._history_bytes = 0
        if not self._subscribers:
            return
        self._last_id += 1
        event = Event(self._last_id, kind, frame(self._last_id, kind, data))
        if not fresh_start:  # a replayed reset would wipe what a reconnecting client has since read
            self._keep(event)
        for subscriber in list(self._subscribers):  # a drop removes it from the list
            subscriber.offer(event)

    def subscribe(self, since: int | None = None, on_drop: Callable[[], None] | None = None,
                  limit: int | None = None, max_bytes: int | None = None) -> Subscription:
        """A new subscriber. With ``since`` (the id of the last event a reconnecting client
        saw) the kept events after it come first; with ``since=0``, every kept event."""
        sub = Subscription(self, self.limit if limit is None else limit,
                           self.max_bytes if max_bytes is None else max_bytes, on_drop)
        self._subscribers.append(sub)
        if since is not None:
            for event in list(self._history):
                if event.id > since:
                    sub.offer(event)
        return sub

    def close(self) -> None:
        """End every subscription (the server is stopping)."""
        for subscriber in list(self._subscribers):
            subscriber.close()

    def _keep(self, event: Event) -> None:
        if not self._history_limit or len(event.frame) > self._history_bytes_limit:
            return
        self._history.append(event)
        self._history_bytes += len(event.frame)
        while len(self._history) > self._history_limit or self._history_bytes > self._history_bytes_limit:
            self._history_bytes -= len(self._history.popleft().frame)

    def _forget(self, sub: Subscription) -> None:
        if sub in self._subscribers:
            self._subscribers.remove(sub)
            if sub.dropped:
                self.dropped += 1
