"""Resources the mock has created, per tenant, so read, list, update and delete answer with
what was created.

A tenant is the value of the contract's tenancy header (the platform id) when a request sends
it, else a fingerprint of its credential, so parallel test runs do not see each other's data.
Write-only request fields (credentials that must never be answered) are kept apart from the
answer body, for the code that needs them (deliveries authenticate with them).

The store is the only owner of this state. Every read hands out a fresh copy and every change
goes through :meth:`MemoryStore.put` or :meth:`MemoryStore.delete`, so no caller can change a
stored resource behind the store's back. The interface is async so that an implementation on
a shared store can stand in for this one.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Protocol

from .. import jsoncodec


Forgotten = Callable[[str, str, str], None]


@dataclass(frozen=True, slots=True)
class Stored:
    """One resource as read: its answer body and its write-only values (both copies)."""

    body: dict[str, Any]
    secrets: dict[str, Any]


class ResourceStore(Protocol):
    """What the engine and the deliveries need from a store of resources."""

    dropped: int

    async def put(self, tenant: str, collection: str, key: str, body: dict[str, Any],
                  secrets: dict[str, Any] | None = None) -> None: ...

    async def get(self, tenant: str, collection: str, key: str) -> Stored | None: ...

    async def delete(self, tenant: str, collection: str, key: str) -> Stored | None: ...

    async def page(self, tenant: str, collection: str, number: int, limit: int, order_by: str | None = None,
                   descending: bool = False) -> tuple[list[dict[str, Any]], int]: ...

    async def everywhere(self, collection: str) -> list[tuple[str, Stored]]: ...

    async def clear(self) -> None: ...

    def on_forget(self, callback: Forgotten) -> None: ...


class _Entry:
    """A resource kept as exact-size JSON bytes: thousands of bodies as dicts would all be
    walked by every full garbage collection; as bytes they cost the collector nothing."""

    __slots__ = ("raw", "secrets")

    def __init__(self, body: dict[str, Any], secrets: dict[str, Any]) -> None:
        # orjson's bytes keep the capacity of its working buffer (about 8 KiB): keep an exact copy
        self.raw = bytes(memoryview(jsoncodec.dumps(body)))
        self.secrets = secrets

    def read(self) -> Stored:
        return Stored(jsoncodec.loads(self.raw), dict(self.secrets))


class MemoryStore:
    """tenant -> collection -> id -> resource, in creation order, in this process's memory.

    Bounded: past ``limit`` resources in all, the oldest is forgotten, so a soak test that
    creates without end cannot exhaust memory; ``dropped`` counts what was forgotten. A tenant
    or collection left empty is removed, so tenants that come and go leave nothing behind.
    """

    def __init__(self, limit: int = 10_000) -> None:
        self.limit = max(1, limit)
        self.dropped = 0
        self._data: dict[str, dict[str, dict[str, _Entry]]] = {}
        self._order: OrderedDict[tuple[str, str, str], None] = OrderedDict()
        self._listeners: list[Forgotten] = []

    def on_forget(self, callback: Forgotten) -> None:
        """Call ``callback(tenant, collection, key)`` whenever a resource is deleted or evicted."""
        self._listeners.append(callback)

    async def put(self, tenant: str, collection: str, key: str, body: dict[str, Any],
                  secrets: dict[str, Any] | None = None) -> None:
        items = self._data.setdefault(tenant, {}).setdefault(collection, {})
        previous = items.get(key)
        kept = {**previous.secrets, **(secrets or {})} if previous is not None else dict(secrets or {})
        items[key] = _Entry(body, kept)
        if previous is None:
            self._order[(tenant, collection, key)] = None
            if len(self._order) > self.limit:
                oldest = self._order.popitem(last=False)[0]
                self._remove(*oldest)
                self.dropped += 1
                self._forgot(*oldest)

    async def get(self, tenant: str, collection: str, key: str) -> Stored | None:
        entry = self._data.get(tenant, {}).get(collection, {}).get(key)
        return entry.read() if entry is not None else None

    async def delete(self, tenant: str, collection: str, key: str) -> Stored | None:
        entry = self._remove(tenant, collection, key)
        if entry is None:
            return None
        self._order.pop((tenant, collection, key), None)
        self._forgot(tenant, collection, key)
        return entry.read()

    async def page(self, tenant: str, collection: str, number: int, limit: int, order_by: str | None = None,
                   descending: bool = False) -> tuple[list[dict[str, Any]], int]:
        """One page of a tenant's collection (pages count from 1) and the number of pages."""
        entries = list(self._data.get(tenant, {}).get(collection, {}).values())
        if order_by:
            bodies = sorted((jsoncodec.loads(e.raw) for e in entries), key=lambda item: sort_key(item.get(order_by)),
                            reverse=descending)
            chosen, pages = page_of(bodies, number, limit)
            return chosen, pages
        if descending:
            entries.reverse()
        chosen_entries, pages = page_of(entries, number, limit)
        return [jsoncodec.loads(e.raw) for e in chosen_entries], pages

    async def everywhere(self, collection: str) -> list[tuple[str, Stored]]:
        """Every stored item of a collection with its tenant (event fan-out)."""
        return [(tenant, entry.read()) for tenant, collections in self._data.items()
                for entry in collections.get(collection, {}).values()]

    async def clear(self) -> None:
        self._data.clear()
        self._order.clear()
        self.dropped = 0

    def tenants(self) -> int:
        """How many tenants hold anything (for tests of bounded memory)."""
        return len(self._data)

    def _remove(self, tenant: str, collection: str, key: str) -> _Entry | None:
        collections = self._data.get(tenant)
        if collections is None:
            return None
        items = collections.get(collection)
        if items is None:
            return None
        entry = items.pop(key, None)
        if not items:
            del collections[collection]
            if not collections:
                del self._data[tenant]
        return entry

    def _forgot(self, tenant: str, collection: str, key: str) -> None:
        for callback in self._listeners:
            callback(tenant, collection, key)


def sort_key(value: Any) -> tuple[int, Any]:
    """Orders values of mixed types without failing: nulls last, then by type, then by value."""
    if value is None:
        return (3, "")
    if isinstance(value, bool):
        return (0, int(value))
    if isinstance(value, (int, float)):
        return (0, value)
    return (1, str(value)) if isinstance(value, str) else (2, jsoncodec.dumps(value, sort_keys=True))


def page_of(items: Iterable[Any], page: int, limit: int) -> tuple[list[Any], int]:
    """Items of one page (pages count from 1) and the number of pages (at least 1)."""
    items = list(items)
    pages = max(1, math.ceil(len(items) / limit))
    start = (page - 1) * limit
    return items[start:start + limit], pages
