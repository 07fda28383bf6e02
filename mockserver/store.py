"""Resources the mock has created, kept in memory per tenant, so read, list, update and delete
answer with what was created.

A tenant is the value of the contract's tenancy header (the platform id) when a request sends
it, else a fingerprint of its credential, so parallel test runs do not see each other's data.
Write-only request fields (credentials that must never be answered) are kept apart from the
answer body, for the code that needs them (deliveries authenticate with them).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any, Iterator

import orjson


class Stored:
    """One resource: kept as JSON bytes until something reads it, then as the parsed dict.

    Thousands of stored bodies as dicts and lists would all be walked by every full garbage
    collection; as bytes they cost the collector nothing. Reading ``body`` parses once and
    keeps the dict, which callers may change in place.
    """

    __slots__ = ("_raw", "_body", "secrets")

    def __init__(self, body: dict[str, Any], secrets: dict[str, Any] | None = None) -> None:
        # orjson's bytes keep the capacity of its working buffer (about 8 KiB); keep an exact copy
        self._raw: bytes | None = bytes(memoryview(orjson.dumps(body)))
        self._body: dict[str, Any] | None = None
        self.secrets: dict[str, Any] = dict(secrets or {})

    @property
    def body(self) -> dict[str, Any]:
        if self._body is None:
            self._body = orjson.loads(self._raw)
            self._raw = None
        return self._body

    @body.setter
    def body(self, value: dict[str, Any]) -> None:
        self._body, self._raw = value, None


class Store:
    """tenant -> collection -> id -> Stored, in creation order.

    Bounded: past ``limit`` resources in all, the oldest is forgotten, so a soak test that
    creates without end cannot exhaust memory; ``dropped`` counts what was forgotten.
    """

    def __init__(self, limit: int = 10_000) -> None:
        self.limit = max(1, limit)
        self.dropped = 0
        self._data: dict[str, dict[str, dict[str, Stored]]] = {}
        self._order: OrderedDict[tuple[str, str, str], None] = OrderedDict()

    def put(self, tenant: str, collection: str, key: str, body: dict[str, Any],
            secrets: dict[str, Any] | None = None) -> Stored:
        items = self._data.setdefault(tenant, {}).setdefault(collection, {})
        stored = items.get(key)
        if stored is None:
            stored = items[key] = Stored(body, dict(secrets or {}))
            self._order[(tenant, collection, key)] = None
            if len(self._order) > self.limit:
                old_tenant, old_collection, old_key = self._order.popitem(last=False)[0]
                self._data[old_tenant][old_collection].pop(old_key, None)
                self.dropped += 1
        else:
            stored.body = body
            stored.secrets.update(secrets or {})
        return stored

    def get(self, tenant: str, collection: str, key: str) -> Stored | None:
        return self._data.get(tenant, {}).get(collection, {}).get(key)

    def delete(self, tenant: str, collection: str, key: str) -> Stored | None:
        self._order.pop((tenant, collection, key), None)
        return self._data.get(tenant, {}).get(collection, {}).pop(key, None)

    def items(self, tenant: str, collection: str) -> list[Stored]:
        return list(self._data.get(tenant, {}).get(collection, {}).values())

    def everywhere(self, collection: str) -> Iterator[tuple[str, Stored]]:
        """Every stored item of a collection with its tenant (event fan-out)."""
        for tenant, collections in self._data.items():
            for stored in list(collections.get(collection, {}).values()):
                yield tenant, stored

    def clear(self) -> None:
        self._data.clear()
        self._order.clear()
        self.dropped = 0


def page_of(items: list[Any], page: int, limit: int) -> tuple[list[Any], int]:
    """Items of one page (pages count from 1) and the number of pages (at least 1)."""
    pages = max(1, math.ceil(len(items) / limit))
    start = (page - 1) * limit
    return items[start:start + limit], pages
