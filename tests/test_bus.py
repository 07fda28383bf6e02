"""The event bus: order, bounded queues (a slow subscriber is dropped), replay, and the frames it writes."""

from __future__ import annotations

import asyncio
import json

from mockserver.bus import Bus, frame


def data_of(event) -> dict:
    lines = event.frame.decode().splitlines()
    return json.loads(next(line[len("data: "):] for line in lines if line.startswith("data: ")))


async def test_every_subscriber_gets_every_event_in_order():
    bus = Bus()
    first, second = bus.subscribe(), bus.subscribe()
    for n in range(3):
        bus.publish("request", {"n": n})
    for sub in (first, second):
        got = [await sub.get() for _ in range(3)]
        assert [e.kind for e in got] == ["request"] * 3
        assert [data_of(e)["n"] for e in got] == [0, 1, 2]
        assert [e.id for e in got] == [1, 2, 3]


async def test_a_waiting_subscriber_is_woken_by_a_publish():
    bus = Bus()
    sub = bus.subscribe()
    waiting = asyncio.create_task(sub.get())
    await asyncio.sleep(0)
    assert not waiting.done()
    bus.publish("scenario", {"active": "flaky"})
    event = await asyncio.wait_for(waiting, 1)
    assert event.kind == "scenario" and data_of(event) == {"active": "flaky"}


async def test_a_slow_subscriber_is_dropped_and_its_queue_freed_while_others_go_on():
    bus = Bus()
    cut = []
    slow = bus.subscribe(limit=3, on_drop=lambda: cut.append(True))
    fast = bus.subscribe(limit=3)
    for n in range(10):
        bus.publish("request", {"n": n})
        assert data_of(await fast.get())["n"] == n  # keeps up: never more than one waiting
    assert slow.closed and slow.dropped and cut == [True]
    assert len(slow) == 0 and slow.pending_bytes == 0  # the memory it held is let go at once
    assert await slow.get() is None  # and its reader ends
    assert not fast.closed and bus.subscribers == 1 and bus.dropped == 1


async def test_a_subscriber_is_also_dropped_when_its_queue_holds_too_many_bytes():
    bus = Bus()
    sub = bus.subscribe(limit=1000, max_bytes=4096)
    bus.publish("request", {"body": "x" * 1000})
    assert not sub.closed
    for _ in range(4):
        bus.publish("request", {"body": "x" * 1000})
    assert sub.dropped and bus.subscribers == 0


def test_nothing_is_encoded_or_kept_while_nobody_listens():
    bus = Bus()
    assert not bus.listening
    bus.publish("request", {"n": 1})
    sub = bus.subscribe(since=0)
    assert len(sub) == 0  # nothing was kept for a replay either
    assert bus.listening


async def test_a_reconnecting_subscriber_gets_what_it_missed_and_a_reset_starts_afresh():
    bus = Bus(history=3)
    watcher = bus.subscribe()
    for n in range(5):
        bus.publish("request", {"n": n})
    missed = bus.subscribe(since=3)
    assert [data_of(await missed.get())["n"] for _ in range(len(missed))] == [3, 4]
    everything = bus.subscribe(since=0)  # only the last three are kept
    assert [data_of(await everything.get())["n"] for _ in range(len(everything))] == [2, 3, 4]
    bus.publish("reset", {}, fresh_start=True)
    after = bus.subscribe(since=0)
    assert len(after) == 0  # neither what came before the reset nor the reset itself
    assert (await everything.get()).kind == "reset"  # but those listening are told
    watcher.close()


async def test_closing_the_bus_ends_every_subscription():
    bus = Bus()
    subs = [bus.subscribe() for _ in range(3)]
    readers = [asyncio.create_task(s.get()) for s in subs]
    await asyncio.sleep(0)
    bus.close()
    assert await asyncio.gather(*readers) == [None, None, None]
    assert bus.subscribers == 0 and bus.dropped == 0  # closed, not dropped


def test_frames_are_server_sent_events_with_one_data_line():
    raw = frame(7, "request", {"text": "two\nlines", "n": 1})
    assert raw == b'id: 7\nevent: request\ndata: {"text":"two\\nlines","n":1}\n\n'


def test_a_value_that_is_not_utf8_is_escaped_not_refused():
    raw = frame(1, "request", {"header": "bad \udcff byte"})
    assert raw.endswith(b"\n\n")
    assert json.loads(raw.decode().split("data: ", 1)[1]) == {"header": "bad \udcff byte"}
