"""The run-time state on a real Redis server (mockserver.state.redis): the store behaves as the
in-memory one does, counters and the journal are shared by replicas, a reset reaches them all,
the password never shows, and a lost server costs a bounded wait and then comes back by itself."""

from __future__ import annotations

import asyncio
import inspect
import os
import random
import signal
import sys
import time
from typing import Any

import pytest

from redis_server import RedisServer, free_port

from mockserver.state.book import MemoryLedger, client_of, fingerprint
from mockserver.state.redis import DEADLINE, RedisState, StateUnavailable, connect, open_state, redacted
from mockserver.state.store import MemoryStore, ResourceStore

pytest_plugins = ["conftest_redis"]  # redis_url, redis_prefix: one real server per test process


async def wipe(state: RedisState) -> None:
    """Remove every key of the state's prefix."""
    await state.reset()
    await state.client.delete(state.prefix + "gen")


@pytest.fixture
async def state(redis_url, redis_prefix):
    opened = await open_state(redis_url, redis_prefix)
    yield opened
    await wipe(opened)
    await opened.close()


@pytest.fixture
async def replica(redis_url, redis_prefix, state):
    """A second mock on the same server and prefix: another replica of ``state``."""
    opened = await open_state(redis_url, redis_prefix)
    yield opened
    await opened.close()


@pytest.fixture(params=["memory", "redis"])
def make_store(request):
    """Stores of one kind: in memory, or on Redis (all on one prefix, as replicas would be)."""
    shared = request.getfixturevalue("state") if request.param == "redis" else None

    def make(limit: int = 10_000) -> ResourceStore:
        return MemoryStore(limit) if shared is None else shared.store(limit)
    return make


async def tenants(store: Any) -> int:
    count = store.tenants()  # in memory a plain method, on Redis it asks the server
    return await count if inspect.isawaitable(count) else count


def ids(bodies: list[dict[str, Any]]) -> list[Any]:
    return [b["id"] for b in bodies]


# ---------------------------------------------------------------- the store, on both backends


async def test_a_resource_reads_back_as_stored_and_a_read_is_a_copy(make_store):
    store = make_store()
    await store.put("t", "webhooks", "w1", {"id": "w1", "nested": {"n": 1}, "big": 18446744073709551616},
                    {"password": "p"})
    first = await store.get("t", "webhooks", "w1")
    assert first.body == {"id": "w1", "nested": {"n": 1}, "big": 18446744073709551616}
    assert first.secrets == {"password": "p"}
    first.body["nested"]["n"] = 2
    first.secrets["password"] = "changed"
    again = await store.get("t", "webhooks", "w1")
    assert again.body["nested"] == {"n": 1} and again.secrets == {"password": "p"}
    assert await store.get("t", "webhooks", "nope") is None
    assert await store.get("other", "webhooks", "w1") is None


async def test_an_update_replaces_the_body_merges_the_secrets_and_keeps_the_place(make_store):
    store = make_store()
    await store.put("t", "webhooks", "w1", {"id": "w1", "v": 1}, {"password": "p", "api_key": "k"})
    await store.put("t", "webhooks", "w2", {"id": "w2"})
    await store.put("t", "webhooks", "w1", {"id": "w1", "v": 2}, {"password": "q"})
    stored = await store.get("t", "webhooks", "w1")
    assert stored.body == {"id": "w1", "v": 2}
    assert stored.secrets == {"password": "q", "api_key": "k"}
    assert ids((await store.page("t", "webhooks", 1, 10))[0]) == ["w1", "w2"]


async def test_pages_count_from_one_in_creation_order(make_store):
    store = make_store()
    assert await store.page("t", "webhooks", 1, 2) == ([], 1)
    for i in range(5):
        await store.put("t", "webhooks", f"w{i}", {"id": f"w{i}"})
    assert (ids((await store.page("t", "webhooks", 1, 2))[0]), (await store.page("t", "webhooks", 1, 2))[1]) == (
        ["w0", "w1"], 3)
    assert ids((await store.page("t", "webhooks", 3, 2))[0]) == ["w4"]
    assert await store.page("t", "webhooks", 4, 2) == ([], 3)
    assert ids((await store.page("t", "webhooks", 1, 2, descending=True))[0]) == ["w4", "w3"]
    assert ids((await store.page("t", "webhooks", 3, 2, descending=True))[0]) == ["w0"]
    assert ids((await store.page("t", "webhooks", 1, sys.maxsize))[0]) == [f"w{i}" for i in range(5)]
    assert await store.page("t", "webhooks", 2, sys.maxsize) == ([], 1)
    assert await store.page("t", "webhooks", 0, 2) == ([], 3)  # as Python's slice has it


async def test_ordering_by_a_field_puts_numbers_then_text_then_other_values_then_nulls(make_store):
    store = make_store()
    values = [("a", "beta"), ("b", 2), ("c", None), ("d", True), ("e", {"x": 1}), ("f", 1.5), ("g", "alpha"),
              ("h", [1]), ("i", 2)]
    for key, value in values:
        await store.put("t", "webhooks", key, {"id": key, "v": value})
    await store.put("t", "webhooks", "j", {"id": "j"})  # no such field: last, as null
    ascending, pages = await store.page("t", "webhooks", 1, 20, "v")
    assert ids(ascending) == ["d", "f", "b", "i", "g", "a", "h", "e", "c", "j"] and pages == 1
    descending, _ = await store.page("t", "webhooks", 1, 20, "v", descending=True)
    assert ids(descending) == ["c", "j", "e", "h", "a", "g", "b", "i", "f", "d"]
    assert ids((await store.page("t", "webhooks", 2, 3, "v"))[0]) == ["i", "g", "a"]


async def test_a_delete_answers_what_was_stored_and_tells_the_listeners(make_store):
    store = make_store()
    forgotten = []
    store.on_forget(lambda *key: forgotten.append(key))
    await store.put("t", "webhooks", "w1", {"id": "w1"}, {"password": "p"})
    deleted = await store.delete("t", "webhooks", "w1")
    assert deleted.body == {"id": "w1"} and deleted.secrets == {"password": "p"}
    assert await store.delete("t", "webhooks", "w1") is None
    assert await store.get("t", "webhooks", "w1") is None
    assert forgotten == [("t", "webhooks", "w1")]
    await store.put("t", "webhooks", "w1", {"id": "w1"})  # created again: no secret comes back
    assert (await store.get("t", "webhooks", "w1")).secrets == {}


async def test_the_store_is_bounded_and_forgets_the_oldest_first_across_tenants(make_store):
    store = make_store(limit=3)
    forgotten = []
    store.on_forget(lambda *key: forgotten.append(key))
    for i in range(5):
        await store.put("ab"[i % 2], "webhooks", f"w{i}", {"id": f"w{i}"})
    assert ids((await store.page("a", "webhooks", 1, 10))[0]) == ["w2", "w4"]
    assert ids((await store.page("b", "webhooks", 1, 10))[0]) == ["w3"]
    assert store.dropped == 2
    await store.delete("b", "webhooks", "w3")
    await store.put("a", "webhooks", "w5", {"id": "w5"})
    await store.put("a", "webhooks", "w2", {"id": "w2", "again": True})  # an update is not a new resource
    assert ids((await store.page("a", "webhooks", 1, 10))[0]) == ["w2", "w4", "w5"]
    await store.put("c", "webhooks", "w6", {"id": "w6"})
    assert ids((await store.page("a", "webhooks", 1, 10))[0]) == ["w4", "w5"]
    assert forgotten == [("a", "webhooks", "w0"), ("b", "webhooks", "w1"), ("b", "webhooks", "w3"),
                         ("a", "webhooks", "w2")]
    assert store.dropped == 3


async def test_tenants_vanish_when_their_last_resource_goes(make_store):
    store = make_store(limit=2)
    await store.put("a", "webhooks", "w1", {"id": "w1"})
    await store.put("b", "webhooks", "w2", {"id": "w2"})
    await store.delete("a", "webhooks", "w1")
    assert await tenants(store) == 1
    await store.put("c", "webhooks", "w3", {"id": "w3"})
    await store.put("d", "webhooks", "w4", {"id": "w4"})  # evicts b's only webhook
    assert await tenants(store) == 2


async def test_everywhere_lists_a_collection_across_tenants_in_order_of_arrival(make_store):
    store = make_store()
    await store.put("b", "webhooks", "w1", {"id": "w1"}, {"password": "p"})
    await store.put("a", "webhooks", "w2", {"id": "w2"})
    await store.put("b", "events", "e1", {"id": "e1"})
    await store.put("b", "webhooks", "w3", {"id": "w3"})
    found = [(tenant, stored.body["id"], stored.secrets) for tenant, stored in await store.everywhere("webhooks")]
    assert found == [("b", "w1", {"password": "p"}), ("b", "w3", {}), ("a", "w2", {})]
    assert await store.everywhere("nothing") == []


async def test_clear_forgets_everything_without_telling_the_listeners(make_store):
    store = make_store(limit=1)
    forgotten = []
    store.on_forget(lambda *key: forgotten.append(key))
    await store.put("a", "webhooks", "w1", {"id": "w1"})
    await store.put("a", "webhooks", "w2", {"id": "w2"}, {"password": "p"})
    await store.clear()
    assert store.dropped == 0 and await tenants(store) == 0 and forgotten == [("a", "webhooks", "w1")]
    assert await store.page("a", "webhooks", 1, 10) == ([], 1)
    await store.put("a", "webhooks", "w2", {"id": "w2"})
    assert (await store.get("a", "webhooks", "w2")).secrets == {}


async def test_names_with_separators_and_odd_text_cannot_reach_each_other(make_store):
    store = make_store()
    names = [("a:1", "b", "c"), ("a", "1:b", "c"), ("a", "1", "b:c"), ("1:a", "", "x"), ("é", "ü\udcff", "k\x00")]
    for n, (tenant, collection, key) in enumerate(names):
        await store.put(tenant, collection, key, {"n": n})
    for n, (tenant, collection, key) in enumerate(names):
        assert (await store.get(tenant, collection, key)).body == {"n": n}
        assert len((await store.page(tenant, collection, 1, 10))[0]) == 1
    assert await tenants(store) == 4
    assert [tenant for tenant, _ in await store.everywhere("ü\udcff")] == ["é"]


async def test_redis_gives_the_same_answers_as_memory_for_a_long_random_run(state):
    rng = random.Random(20240415)
    memory, shared = MemoryStore(limit=12), state.store(limit=12)
    heard: dict[str, list[tuple[str, str, str]]] = {"memory": [], "redis": []}
    memory.on_forget(lambda *key: heard["memory"].append(key))
    shared.on_forget(lambda *key: heard["redis"].append(key))
    values = [1, 2.5, -3, "x", "Y", "", None, True, False, [1], {"k": "v"}, 10**20]
    for step in range(400):
        tenant, collection, key = rng.choice("ab:"), rng.choice(["w", "x"]), f"k{rng.randrange(10)}"
        action = rng.random()
        if action < 0.45:
            body = {"id": key, "step": step}
            if rng.random() < 0.8:
                body["v"] = rng.choice(values)
            secrets = {rng.choice(["password", "api_key"]): f"s{step}"} if rng.random() < 0.3 else None
            await memory.put(tenant, collection, key, body, secrets)
            await shared.put(tenant, collection, key, body, secrets)
        elif action < 0.6:
            assert await shared.delete(tenant, collection, key) == await memory.delete(tenant, collection, key)
        elif action < 0.7:
            assert await shared.get(tenant, collection, key) == await memory.get(tenant, collection, key)
        else:
            args = (tenant, collection, rng.randrange(0, 5), rng.randrange(1, 6), rng.choice([None, "v", "id"]),
                    rng.random() < 0.5)
            assert await shared.page(*args) == await memory.page(*args), args
        assert heard["redis"] == heard["memory"] and shared.dropped == memory.dropped
    assert await shared.tenants() == memory.tenants()
    for collection in ("w", "x"):
        assert await shared.everywhere(collection) == await memory.everywhere(collection)


async def test_a_collection_larger_than_a_lua_stack_pages_whole(state):
    store = state.store(limit=9_000)
    for start in range(0, 8_200, 200):
        await asyncio.gather(*(store.put("t", "w", f"k{i:05}", {"id": i}) for i in range(start, start + 200)))
    bodies, pages = await store.page("t", "w", 1, sys.maxsize)  # in the order the server ran the puts
    assert pages == 1 and sorted(b["id"] for b in bodies) == list(range(8_200))
    assert [stored.body for _, stored in await store.everywhere("w")] == bodies
    assert (await store.page("t", "w", 1, sys.maxsize, "id", descending=True))[0] == sorted(
        bodies, key=lambda b: b["id"], reverse=True)


# ---------------------------------------------------------------- replicas


def _take_in_another_thread(url: str, prefix: str, rule: int, tasks: int) -> list[bool]:
    """A replica with its own event loop and connections, racing for the same counter."""
    async def race() -> list[bool]:
        other = await open_state(url, prefix)
        try:
            ledger = other.ledger()
            return list(await asyncio.gather(*(ledger.take("flaky", None, rule, 3) for _ in range(tasks))))
        finally:
            await other.close()
    return asyncio.run(race())


async def used(ledger: Any, scenario: str, client: str | None, rule: int) -> int:
    return (await ledger.counters()).get((scenario, client), {}).get(rule, 0)


async def test_a_times_counter_answers_exactly_n_times_across_replicas(state, replica, redis_url, redis_prefix):
    for rule in range(5):
        here = [state.ledger().take("flaky", None, rule, 3) for _ in range(40)]
        there = [replica.ledger().take("flaky", None, rule, 3) for _ in range(40)]
        results = await asyncio.gather(asyncio.to_thread(_take_in_another_thread, redis_url, redis_prefix, rule, 40),
                                       *here, *there)
        taken = sum(results[0]) + sum(results[1:])
        assert taken == 3, rule
        assert await used(state.ledger(), "flaky", None, rule) == 3
        assert (await replica.ledger().answered("flaky"))[rule] == 3


@pytest.fixture(params=["memory", "redis"])
async def ledgers(request, redis_url, redis_prefix):
    """Two replicas' ledgers: one and the same in memory, or two clients of one Redis prefix."""
    if request.param == "memory":
        one = MemoryLedger()
        yield one, one, None
        return
    first, second = await open_state(redis_url, redis_prefix), await open_state(redis_url, redis_prefix)
    yield first.ledger(), second.ledger(), first
    await wipe(first)
    await first.close()
    await second.close()


async def test_counters_are_per_scenario_client_and_rule_and_can_be_refunded_and_restarted(ledgers):
    mine, theirs, _ = ledgers
    assert await mine.take("s", "api_key:sha256:abc", 0, 1)
    assert not await theirs.take("s", "api_key:sha256:abc", 0, 1)
    assert await theirs.take("s", None, 0, 1) and await theirs.take("s", "", 0, 1)  # "" is a client, not none
    assert await theirs.take("s", "api_key:sha256:abc", 1, 1) and await theirs.take("t", "api_key:sha256:abc", 0, 1)
    assert all([await theirs.take("u", None, 0, None) for _ in range(3)])  # no limit: counted all the same
    await theirs.refund("s", "api_key:sha256:abc", 0)
    assert await mine.answered("s") == {0: 2, 1: 1}
    assert await mine.take("s", "api_key:sha256:abc", 0, 1)
    assert await mine.counters() == {("s", "api_key:sha256:abc"): {0: 1, 1: 1}, ("s", None): {0: 1},
                                     ("s", ""): {0: 1}, ("t", "api_key:sha256:abc"): {0: 1}, ("u", None): {0: 3}}
    await mine.restart("s", answers=False)
    assert set(await theirs.counters()) == {("t", "api_key:sha256:abc"), ("u", None)}
    assert await theirs.answered("s") == {0: 3, 1: 1}
    await mine.restart("s")
    assert await theirs.answered("s") == {} and await theirs.answered("u") == {0: 3}
    await mine.clear()
    assert await theirs.counters() == {} and await theirs.answered("u") == {}


async def test_the_selection_and_bindings_are_shared_and_keep_no_credential(ledgers):
    mine, theirs, state = ledgers
    assert (await mine.lookup((), "start"))[0] == "start"
    await mine.set_active("flaky")
    assert (await theirs.lookup((), "start"))[0] == "flaky"
    await mine.set_active(None)
    assert (await theirs.lookup((), "start"))[0] is None
    await mine.take("s", client_of("api_key", "key-123"), 0, 5)
    await mine.bind("api_key", "key-123", "slow")
    assert await used(mine, "s", client_of("api_key", "key-123"), 0) == 0  # a binding starts afresh
    await theirs.bind("token", "tok-456", "slow")
    assert (await theirs.lookup([("api_key", "key-123"), ("api_key", "other"), ("token", "tok-456")], "start"))[:2] == (
        None, ["slow", None, "slow"])
    assert await mine.bindings() == [("api_key", fingerprint("key-123"), "slow"), ("token", fingerprint("tok-456"), "slow")]
    if state is not None:
        everything = b"".join([key + b"".join(map(bytes, await _values(state, key)))
                               for key in await state.client.keys(state.prefix + "*")])
        assert b"key-123" not in everything and b"tok-456" not in everything
    await theirs.set_active("slow")
    assert await mine.forget("slow") == (True, 2)
    assert (await mine.lookup([("api_key", "key-123")], "start"))[:2] == (None, [None])
    await mine.bind("api_key", "key-123", "fast")
    await mine.bind("api_key", "key-123", None)
    assert await theirs.bindings() == []
    await mine.set_active("x")
    await theirs.clear()
    assert (await mine.lookup((), "start"))[0] == "start"


async def test_run_time_scenarios_are_shared_with_a_version_every_lookup_reads(state, replica):
    mine, theirs = state.ledger(), replica.ledger()
    assert await theirs.runtime() == (0, {})
    await mine.put_scenario("late", '{"rules": []}')
    version = (await theirs.lookup((), None))[2]
    assert version > 0 and await theirs.runtime() == (version, {"late": '{"rules": []}'})
    await theirs.drop_scenario("late")
    after = (await mine.lookup((), None))[2]
    assert after > version and await mine.runtime() == (after, {})
    await mine.put_scenario("again", "{}")
    await replica.reset()
    assert (await mine.lookup((), None))[2] == 0 and await mine.runtime() == (0, {})


async def _values(state: RedisState, key: bytes) -> list[bytes]:
    kind = await state.client.type(key)
    if kind == b"hash":
        return list((await state.client.hgetall(key)).values())
    if kind == b"string":
        return [await state.client.get(key)]
    return []


async def test_the_journal_is_one_capped_stream_read_oldest_first_on_any_replica(state, replica):
    mine, theirs = state.journal(limit=5), replica.journal(limit=5)
    for i in range(4):
        await mine.append({"n": f"a{i}"})
        await theirs.append({"n": f"b{i}", "big": 10**20})
    expected = [{"n": "a1"}, {"n": "b1", "big": 10**20}, {"n": "a2"}, {"n": "b2", "big": 10**20}, {"n": "a3"},
                {"n": "b3", "big": 10**20}][1:]
    assert await mine.read() == (expected, 3)
    assert await theirs.entries() == expected and await theirs.length() == 5
    await theirs.clear()
    assert await mine.read() == ([], 0)


async def test_concurrent_appends_are_all_kept_up_to_the_cap(state, replica):
    mine, theirs = state.journal(limit=150), replica.journal(limit=150)
    await asyncio.gather(*(journal.append({"i": i}) for i in range(100) for journal in (mine, theirs)))
    entries, dropped = await theirs.read()
    assert len(entries) == 150 and dropped == 50


async def test_a_reset_on_one_replica_is_a_reset_on_every_replica(state, replica):
    store, journal = state.store(), state.journal()
    await store.put("t", "webhooks", "w1", {"id": "w1"}, {"password": "p"})
    await journal.append({"n": 1})
    await state.ledger().take("s", None, 0, 1)
    await state.ledger().set_active("flaky")
    await state.ledger().bind("api_key", "k", "slow")
    before = await replica.generation()
    assert await replica.reset() == before + 1 == await state.generation()
    assert await store.get("t", "webhooks", "w1") is None and await store.tenants() == 0
    assert await journal.read() == ([], 0)
    assert await state.ledger().take("s", None, 0, 1)
    assert await state.ledger().lookup([("api_key", "k")], "start") == ("start", [None], 0)
    await store.put("t", "webhooks", "w2", {"id": "w2"})
    keys = await state.client.keys(state.prefix + "*")
    assert all(key.startswith(f"{state.prefix}g{before + 1}:".encode()) or key == f"{state.prefix}gen".encode()
               for key in keys), keys  # the old generation is swept


async def test_a_write_that_raced_a_reset_is_swept_by_the_next(state, replica):
    old = await state.generation()
    await state.client.set(f"{state.prefix}g{old}:late", "x")  # as a script that ran just before the INCR
    await replica.client.incr(replica.prefix + "gen")  # a reset whose sweep ran before the late write
    assert await state.sweep() == 1
    assert await state.client.exists(f"{state.prefix}g{old}:late") == 0


# ---------------------------------------------------------------- URLs and the password


@pytest.mark.parametrize("url, shown", [
    ("redis://:pa55word@host:6379/0", "redis://host:6379/0"),
    ("rediss://user:pa55word@host:6380/2", "rediss://user@host:6380/2"),
    ("redis://user@host", "redis://user@host"),
    ("redis://host:6379?password=pa55word&db=3", "redis://host:6379?db=3"),
    ("redis://:p%40ss%2Fword@[::1]:6379/0#x", "redis://[::1]:6379/0#x"),
    ("redis://:p@ss@host/0", "redis://host/0"),
    ("redis://:pa/ss#word@host/0", "redis://host/0"),
    ("redis://host:6379/0?client_name=a&password=p@ss", "redis://host:6379/0?client_name=a"),
    ("not a url :pa55word", "<not a URL>"),
])
def test_a_url_is_shown_without_its_password(url, shown):
    assert redacted(url) == shown


def test_a_url_that_is_not_redis_is_refused_without_its_password():
    for url, shown in [("http://:pa55word@host/", "http://host/"), ("unix://:pa55word@/tmp/sock", "unix:///tmp/sock"),
                       ("redis://:pa55word@host:port/0", "redis://host:port/0")]:
        with pytest.raises(ValueError) as caught:
            connect(url)
        assert "pa55word" not in str(caught.value) and str(caught.value).endswith(shown)


PASSWORD = "p@ss:w/rd-0123"
QUOTED = "p%40ss%3Aw%2Frd-0123"


@pytest.fixture(scope="module")
def guarded():
    """A server of its own that wants a password."""
    with RedisServer(password=PASSWORD) as server:
        yield server


async def test_a_password_in_the_url_is_used_and_never_shown(guarded):
    good = f"redis://:{QUOTED}@127.0.0.1:{guarded.port}/0"
    state = await open_state(good, "pw")
    try:
        await state.journal().append({"n": 1})
        assert state.where == f"redis://127.0.0.1:{guarded.port}/0"
        await wipe(state)
    finally:
        await state.close()
    for bad in (f"redis://:wrong-{QUOTED}@127.0.0.1:{guarded.port}/0", f"redis://127.0.0.1:{guarded.port}/0",
                f"redis://default:{QUOTED}x@127.0.0.1:{guarded.port}/0?password=wrong-{QUOTED}"):
        with pytest.raises(StateUnavailable) as caught:
            await open_state(bad, "pw")
        message = str(caught.value)
        assert f"127.0.0.1:{guarded.port}" in message and "\n" not in message
        for secret in (PASSWORD, QUOTED, "p@ss"):
            assert secret not in message, message


async def test_an_unreachable_server_fails_at_start_up_quickly_naming_the_url_without_its_password():
    port = free_port()
    started = time.monotonic()
    with pytest.raises(StateUnavailable) as caught:
        await open_state(f"redis://:{QUOTED}@127.0.0.1:{port}/3")
    assert time.monotonic() - started < DEADLINE + 1
    message = str(caught.value)
    assert message.startswith(f"cannot reach the state store at redis://127.0.0.1:{port}/3: ")
    assert PASSWORD not in message and QUOTED not in message and "\n" not in message


# ---------------------------------------------------------------- a lost server


@pytest.fixture
def private_server():
    with RedisServer() as server:
        yield server


async def test_a_lost_server_answers_state_unavailable_in_bounded_time_and_recovery_is_automatic(private_server):
    state = await open_state(private_server.url, "lost")
    store = state.store()
    try:
        await store.put("t", "webhooks", "w1", {"id": "w1"})
        private_server.stop()
        for operation in (store.get("t", "webhooks", "w1"), state.journal().append({"n": 1}),
                          state.ledger().take("s", None, 0, 1)):
            started = time.monotonic()
            with pytest.raises(StateUnavailable) as caught:
                await operation
            assert time.monotonic() - started < DEADLINE + 1
            assert f"the state store at redis://127.0.0.1:{private_server.port}/0 is unavailable: " in str(caught.value)
        private_server.start()  # the same port, empty, as a replacement Redis would be
        assert await store.get("t", "webhooks", "w1") is None  # the first call after it is back succeeds
        await store.put("t", "webhooks", "w2", {"id": "w2"})
        assert ids((await store.page("t", "webhooks", 1, 10))[0]) == ["w2"]
        assert await state.ledger().take("s", None, 0, 1)
    finally:
        await state.close()


async def test_a_server_that_stops_answering_costs_the_deadline_not_a_hang(private_server):
    state = await open_state(private_server.url, "hung", deadline=1.0, socket_timeout=0.3, connect_timeout=0.3)
    try:
        await state.ping()
        os.kill(private_server.process.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            with pytest.raises(StateUnavailable) as caught:
                await state.store().put("t", "webhooks", "w1", {"id": "w1"})
            assert time.monotonic() - started < 2.0
            assert "unavailable" in str(caught.value)
        finally:
            os.kill(private_server.process.pid, signal.SIGCONT)
        await state.store().put("t", "webhooks", "w2", {"id": "w2"})
        assert (await state.store().get("t", "webhooks", "w2")).body == {"id": "w2"}
    finally:
        await state.close()
