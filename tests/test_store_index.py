"""The memory store's indexed pages against a plain reference: sort everything, then slice.

The reference is the store as it was before the indexes (every page read all of a tenant's
resources and sorted them): whatever the puts, deletes, evictions and clears before it, a page
of the indexed store must be exactly the reference's page, with the same page count, the same
order of ties and the same place for nulls in both directions.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Coroutine
from typing import Any

from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from mockserver import jsoncodec
from mockserver.state.store import MemoryStore, _Entry, sort_key

TENANTS = ("t1", "t2")
COLLECTIONS = ("webhooks", "meters")
KEYS = tuple(f"k{i}" for i in range(8))
# Mostly one tenant's one collection, so it holds enough resources for pages of several items.
PLACES = st.sampled_from([("t1", "webhooks")] * 6 + [("t1", "meters"), ("t2", "webhooks")])
# More fields than a collection keeps indexes for, so an index is also dropped and rebuilt.
FIELDS = tuple(f"f{i}" for i in range(10))

# Few distinct values, so ties are common; values of every JSON type, ones that compare equal
# across types (1, 1.0, True), and an integer beyond 64 bits (written and read by the fallback).
VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-2, 2), st.sampled_from([1.0, -0.0, 0.5, 2**70, 1e300]),
    st.sampled_from(["", "a", "b", "B", "é"]),
    st.lists(st.integers(0, 1), max_size=2), st.dictionaries(st.sampled_from(["x", "y"]), st.integers(0, 1), max_size=2),
)
BODIES = st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=4)


def run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """The memory store never waits on anything: drive its coroutines to the end in one step."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    raise AssertionError("the memory store awaited something")


def outcome(call: Any) -> tuple[str, Any]:
    try:
        return "answer", call()
    except Exception as exc:  # the two must fail alike too (a limit of 0)
        return "raised", type(exc)


class ReferenceStore:
    """The plain implementation: dicts in creation order, a full sort for every ordered page."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.dropped = 0
        self.data: dict[str, dict[str, dict[str, tuple[bytes, dict[str, Any]]]]] = {}
        self.order: OrderedDict[tuple[str, str, str], None] = OrderedDict()
        self.forgotten: list[tuple[str, str, str]] = []

    def put(self, tenant: str, collection: str, key: str, body: dict[str, Any], secrets: dict[str, Any]) -> None:
        items = self.data.setdefault(tenant, {}).setdefault(collection, {})
        previous = items.get(key)
        items[key] = (jsoncodec.dumps(body), {**(previous[1] if previous else {}), **secrets})
        if previous is None:
            self.order[(tenant, collection, key)] = None
            if len(self.order) > self.limit:
                oldest = self.order.popitem(last=False)[0]
                self.remove(*oldest)
                self.dropped += 1
                self.forgotten.append(oldest)

    def delete(self, tenant: str, collection: str, key: str) -> dict[str, Any] | None:
        found = self.remove(tenant, collection, key)
        if found is None:
            return None
        self.order.pop((tenant, collection, key))
        self.forgotten.append((tenant, collection, key))
        return jsoncodec.loads(found[0])

    def remove(self, tenant: str, collection: str, key: str) -> tuple[bytes, dict[str, Any]] | None:
        items = self.data.get(tenant, {}).get(collection)
        if items is None or key not in items:
            return None
        found = items.pop(key)
        if not items:
            del self.data[tenant][collection]
            if not self.data[tenant]:
                del self.data[tenant]
        return found

    def page(self, tenant: str, collection: str, number: int, limit: int, order_by: str | None,
             descending: bool) -> tuple[list[dict[str, Any]], int]:
        bodies = [jsoncodec.loads(raw) for raw, _ in self.data.get(tenant, {}).get(collection, {}).values()]
        if order_by:
            bodies = sorted(bodies, key=lambda body: sort_key(body.get(order_by)), reverse=descending)
        elif descending:
            bodies.reverse()
        pages = max(1, math.ceil(len(bodies) / limit))
        start = (number - 1) * limit
        return bodies[start:start + limit], pages

    def everywhere(self, collection: str) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
        return [(tenant, jsoncodec.loads(raw), secrets) for tenant, collections in self.data.items()
                for raw, secrets in collections.get(collection, {}).values()]


class IndexedPages(RuleBasedStateMachine):
    @initialize(limit=st.integers(1, 3) | st.integers(8, 20))
    def start(self, limit: int) -> None:
        self.store = MemoryStore(limit)
        self.reference = ReferenceStore(limit)
        self.forgotten: list[tuple[str, str, str]] = []
        self.store.on_forget(lambda *key: self.forgotten.append(key))

    @rule(place=PLACES, key=st.sampled_from(KEYS), body=BODIES,
          secrets=st.dictionaries(st.sampled_from(["password", "api_key"]), st.text(max_size=2), max_size=1))
    def put(self, place: tuple[str, str], key: str, body: dict[str, Any], secrets: dict[str, Any]) -> None:
        tenant, collection = place
        run(self.store.put(tenant, collection, key, {"id": key, **body}, secrets))
        self.reference.put(tenant, collection, key, {"id": key, **body}, secrets)

    @rule(place=PLACES, key=st.sampled_from(KEYS))
    def delete_any(self, place: tuple[str, str], key: str) -> None:
        self.delete(*place, key)

    def delete(self, tenant: str, collection: str, key: str) -> None:
        deleted = run(self.store.delete(tenant, collection, key))
        assert (deleted.body if deleted else None) == self.reference.delete(tenant, collection, key)

    @precondition(lambda self: self.reference.order)
    @rule(data=st.data())
    def delete_an_existing_one(self, data: st.DataObject) -> None:
        self.delete(*data.draw(st.sampled_from(list(self.reference.order))))

    @rule()
    def clear(self) -> None:
        run(self.store.clear())
        self.reference = ReferenceStore(self.reference.limit)
        self.forgotten.clear()

    @rule(place=PLACES, number=st.integers(-2, 8), limit=st.integers(-2, 6) | st.just(100),
          order_by=st.none() | st.just("") | st.sampled_from((*FIELDS, "id", "missing")), descending=st.booleans())
    def page(self, place: tuple[str, str], number: int, limit: int, order_by: str | None, descending: bool) -> None:
        tenant, collection = place
        got = outcome(lambda: run(self.store.page(tenant, collection, number, limit, order_by, descending)))
        assert got == outcome(lambda: self.reference.page(tenant, collection, number, limit, order_by, descending))

    @invariant()
    def the_same_resources_and_the_same_forgotten(self) -> None:
        if not hasattr(self, "store"):
            return
        assert self.forgotten == self.reference.forgotten
        assert self.store.dropped == self.reference.dropped
        assert self.store.tenants() == len(self.reference.data)
        for collection in COLLECTIONS:
            got = [(tenant, item.body, item.secrets) for tenant, item in run(self.store.everywhere(collection))]
            assert got == self.reference.everywhere(collection)
            for tenant in TENANTS:  # every item in its place, in both orders (a field's index, if built)
                for order_by in (None, "f0"):
                    for descending in (False, True):
                        got = run(self.store.page(tenant, collection, 1, 100, order_by, descending))
                        assert got == self.reference.page(tenant, collection, 1, 100, order_by, descending)


IndexedPages.TestCase.settings = settings(max_examples=150, stateful_step_count=60, deadline=None)
TestIndexedPages = IndexedPages.TestCase


async def test_a_page_reads_only_its_own_items(monkeypatch):
    """Bodies are decoded for the page's items only, once the order is known."""
    store = MemoryStore()
    for i in range(300):
        await store.put("t", "webhooks", f"w{i:03}", {"id": f"w{i:03}", "name": f"n{(i * 7) % 300:03}"})
    for descending in (False, True):  # builds the two indexes: each reads every body once
        await store.page("t", "webhooks", 1, 20, "name", descending)

    decoded: list[Any] = []
    real = _Entry.body
    monkeypatch.setattr(_Entry, "body", lambda entry: decoded.append(entry) or real(entry))
    for order_by in (None, "name"):
        for descending in (False, True):
            chosen, pages = await store.page("t", "webhooks", 7, 20, order_by, descending)
            assert len(chosen) == 20 and pages == 15
    assert len(decoded) == 4 * 20


async def test_an_ordered_page_follows_changes_made_after_its_index_was_built():
    store = MemoryStore(limit=4)
    for key, name in (("a", "b"), ("b", None), ("c", "a"), ("d", "b")):
        await store.put("t", "webhooks", key, {"id": key, "name": name})

    async def ids(descending: bool) -> list[str]:
        return [body["id"] for body in (await store.page("t", "webhooks", 1, 10, "name", descending))[0]]

    assert await ids(False) == ["c", "a", "d", "b"]  # ties in creation order, null last
    assert await ids(True) == ["b", "a", "d", "c"]  # values reversed, ties still in creation order
    await store.put("t", "webhooks", "c", {"id": "c", "name": "z"})  # an update keeps its creation place
    await store.put("t", "webhooks", "e", {"id": "e", "name": "a"})  # evicts "a", the oldest
    await store.delete("t", "webhooks", "b")
    assert await ids(False) == ["e", "d", "c"]
    assert await ids(True) == ["c", "d", "e"]


async def test_a_body_with_an_integer_beyond_64_bits_reads_back_exactly():
    store = MemoryStore()
    await store.put("t", "webhooks", "w", {"id": "w", "big": 2**70 + 1, "digits": "1" * 19})
    assert (await store.get("t", "webhooks", "w")).body["big"] == 2**70 + 1
    assert (await store.page("t", "webhooks", 1, 1, "big"))[0][0]["big"] == 2**70 + 1
