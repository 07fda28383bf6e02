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
from bisect import bisect_left, insort
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Protocol

import orjson

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


# jsoncodec.loads reads a text again, exactly, when it has a run of 19 digits (an integer orjson
# would round); its regular expression costs several times orjson's whole parse of a stored
# body, on every read. A stored body never changes, so it is looked at once, on its first read.
_DIGITS = bytes(0x31 if 0x30 <= b <= 0x39 else 0x30 for b in range(256))  # each digit -> "1", else "0"
_LONG_RUN = b"1" * 19


class _Entry:
    """A resource kept as exact-size JSON bytes: thousands of bodies as dicts would all be
    walked by every full garbage collection; as bytes they cost the collector nothing."""

    __slots__ = ("raw", "secrets", "seq", "plain")

    def __init__(self, body: dict[str, Any], secrets: dict[str, Any], seq: int = 0) -> None:
        # orjson's bytes keep the capacity of its working buffer (about 8 KiB): keep an exact copy
        self.raw = bytes(memoryview(jsoncodec.dumps(body)))
        self.secrets = secrets
        self.seq = seq  # when the key entered its collection: the page order, and ties' order
        self.plain: bool | None = None  # orjson alone reads it exactly; found out on the first read

    def body(self) -> Any:
        """A fresh copy of the body: what ``jsoncodec.loads`` gives, without its search."""
        if self.plain is None:
            self.plain = _LONG_RUN not in self.raw.translate(_DIGITS)
        return orjson.loads(self.raw) if self.plain else jsoncodec.loads(self.raw)

    def read(self) -> Stored:
        return Stored(self.body(), dict(self.secrets))


# A field's index costs a sorted insert on every put to its collection; `order_by` is whatever
# a client sends, so only the most recently used fields keep one.
_INDEXES_PER_COLLECTION = 8


class _Index:
    """A collection's keys in the page order of one ``order_by`` field, kept up to date.

    Rows are ``(sort_key(value), seq, key)``, ascending: the order a stable sort by the value
    gives. For a descending page the rows are ``(sort_key(value), -seq, key)`` read from the
    end, which is what ``sorted(..., reverse=True)`` gives: values reversed (nulls first), ties
    still in insertion order. ``seq`` is unique, so the key is never compared.
    """

    __slots__ = ("field", "sign", "rows", "row_of")

    def __init__(self, field: str, descending: bool, entries: dict[str, _Entry]) -> None:
        self.field = field
        self.sign = -1 if descending else 1
        self.rows = sorted((sort_key(e.body().get(field)), self.sign * e.seq, key)
                           for key, e in entries.items())
        self.row_of = {row[2]: row for row in self.rows}

    def insert(self, key: str, body: dict[str, Any], seq: int) -> None:
        row = (sort_key(body.get(self.field)), self.sign * seq, key)
        insort(self.rows, row)
        self.row_of[key] = row

    def remove(self, key: str) -> None:
        row = self.row_of.pop(key)
        del self.rows[bisect_left(self.rows, row)]

    def key_at(self, position: int, descending: bool) -> str:
        return self.rows[-1 - position if descending else position][2]


class _Collection:
    """One tenant's resources of one collection, addressable by position in every page order.

    ``keys[head:]`` are the keys in insertion order (``seqs`` beside them, for finding one by
    bisection); an eviction, which always takes the collection's oldest, only moves ``head``.
    """

    __slots__ = ("entries", "keys", "seqs", "head", "indexes")

    def __init__(self) -> None:
        self.entries: dict[str, _Entry] = {}
        self.keys: list[str] = []
        self.seqs: list[int] = []
        self.head = 0
        self.indexes: OrderedDict[tuple[str, bool], _Index] = OrderedDict()

    def __len__(self) -> int:
        return len(self.entries)

    def add(self, key: str, entry: _Entry) -> None:
        self.entries[key] = entry
        self.keys.append(key)
        self.seqs.append(entry.seq)
        if self.indexes:
            body = entry.body()  # the values a page reads back, not the caller's
            for index in self.indexes.values():
                index.insert(key, body, entry.seq)

    def replace(self, key: str, entry: _Entry) -> None:
        self.entries[key] = entry
        if self.indexes:
            body = entry.body()
            for index in self.indexes.values():
                index.remove(key)
                index.insert(key, body, entry.seq)

    def discard(self, key: str) -> _Entry | None:
        entry = self.entries.pop(key, None)
        if entry is None:
            return None
        at = bisect_left(self.seqs, entry.seq, self.head)
        if at == self.head:
            self.head += 1
            if self.head >= 64 and 2 * self.head >= len(self.keys):
                del self.keys[:self.head], self.seqs[:self.head]
                self.head = 0
        else:
            del self.keys[at], self.seqs[at]
        for index in self.indexes.values():
            index.remove(key)
        return entry

    def index(self, field: str, descending: bool) -> _Index:
        """The index of ``field`` for this direction, built on first use."""
        found = self.indexes.get((field, descending))
        if found is not None:
            self.indexes.move_to_end((field, descending))
            return found
        built = self.indexes[(field, descending)] = _Index(field, descending, self.entries)
        if len(self.indexes) > _INDEXES_PER_COLLECTION:
            self.indexes.popitem(last=False)
        return built

    def keys_at(self, positions: range, order_by: str | None, descending: bool) -> list[str]:
        if order_by:
            index = self.index(order_by, descending)
            return [index.key_at(p, descending) for p in positions]
        keys, head = self.keys, self.head
        return [keys[-1 - p] if descending else keys[head + p] for p in positions]


class MemoryStore:
    """tenant -> collection -> id -> resource, in creation order, in this process's memory.

    Bounded: past ``limit`` resources in all, the oldest is forgotten, so a soak test that
    creates without end cannot exhaust memory; ``dropped`` counts what was forgotten. A tenant
    or collection left empty is removed, so tenants that come and go leave nothing behind.

    A page costs the same however many resources its collection holds: each collection keeps
    its keys in insertion order and, for each ``order_by`` field asked for, in that field's order
    (built on first use, then kept up to date), so a page reads only its own items.
    """

    def __init__(self, limit: int = 10_000) -> None:
        self.limit = max(1, limit)
        self.dropped = 0
        self._data: dict[str, dict[str, _Collection]] = {}
        self._order: OrderedDict[tuple[str, str, str], None] = OrderedDict()
        self._listeners: list[Forgotten] = []
        self._seq = 0

    def on_forget(self, callback: Forgotten) -> None:
        """Call ``callback(tenant, collection, key)`` whenever a resource is deleted or evicted."""
        self._listeners.append(callback)

    async def put(self, tenant: str, collection: str, key: str, body: dict[str, Any],
                  secrets: dict[str, Any] | None = None) -> None:
        collections = self._data.setdefault(tenant, {})
        items = collections.get(collection)
        if items is None:
            items = collections[collection] = _Collection()
        previous = items.entries.get(key)
        if previous is not None:
            items.replace(key, _Entry(body, {**previous.secrets, **(secrets or {})}, previous.seq))
            return
        self._seq += 1
        items.add(key, _Entry(body, dict(secrets or {}), self._seq))
        self._order[(tenant, collection, key)] = None
        if len(self._order) > self.limit:
            oldest = self._order.popitem(last=False)[0]
            self._remove(*oldest)
            self.dropped += 1
            self._forgot(*oldest)

    async def get(self, tenant: str, collection: str, key: str) -> Stored | None:
        items = self._data.get(tenant, {}).get(collection)
        entry = items.entries.get(key) if items is not None else None
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
        """One page of a tenant's collection (pages count from 1) and the number of pages.

        Sorted by ``order_by`` as a stable sort by :func:`sort_key` would (ties in creation
        order, nulls last), ``descending`` as ``sorted(..., reverse=True)`` would; the same
        page as :func:`page_of` over that list gives, read without building the list.
        """
        items = self._data.get(tenant, {}).get(collection)
        count = len(items) if items is not None else 0
        pages = max(1, math.ceil(count / limit))
        start = (number - 1) * limit
        positions = range(count)[start:start + limit]  # what slicing a list of `count` would take
        if items is None or not positions:
            return [], pages
        chosen = items.keys_at(positions, order_by, descending)
        return [items.entries[key].body() for key in chosen], pages

    async def everywhere(self, collection: str) -> list[tuple[str, Stored]]:
        """Every stored item of a collection with its tenant (event fan-out)."""
        return [(tenant, entry.read()) for tenant, collections in self._data.items()
                if collection in collections for entry in collections[collection].entries.values()]

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
        entry = items.discard(key)
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
