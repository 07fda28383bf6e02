"""Several `mockserver serve` processes on one Redis answer as one mock: through the real console
script, against a real Redis server (see redis_server.py), over real HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import aiohttp
import aiohttp.web
import pytest

from redis_server import RedisServer

from conftest import AUTH, minimal

pytest_plugins = ["conftest_redis"]

THREE = "rules:\n  - name: three-fail\n    times: 3\n    respond: {status: 500}\n"


class Replica:
    def __init__(self, proc: subprocess.Popen, line: str) -> None:
        self.proc, self.line, self.url = proc, line, line.split()[2]

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(20)
        finally:
            self.proc.stdout.close()


def serve(*args: str) -> Replica:
    proc = subprocess.Popen([sys.executable, "-m", "mockserver", "serve", "--port", "0", "--log-level", "WARNING",
                             *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    assert line.startswith("listening on http://127.0.0.1:"), line
    return Replica(proc, line)


@pytest.fixture
def scenarios(tmp_path: Path) -> Path:
    (tmp_path / "three.yaml").write_text(THREE)
    return tmp_path


@pytest.fixture
def pair(redis_url: str, redis_prefix: str, scenarios: Path) -> Iterator[tuple[Replica, Replica]]:
    """Two processes on different ports sharing one state store."""
    options = ("--state", redis_url, "--state-prefix", redis_prefix, "--scenarios-dir", str(scenarios),
               "--fast-retries")
    replicas = [serve(*options), serve(*options)]
    yield replicas[0], replicas[1]
    for replica in replicas:
        replica.stop()


async def call(session: aiohttp.ClientSession, method: str, url: str, body: Any = None,
               headers: dict[str, str] | None = None) -> tuple[int, Any]:
    async with session.request(method, url, json=body, headers={**AUTH, **(headers or {})}) as resp:
        text = await resp.text()
        return resp.status, (json.loads(text) if text else None)


async def behave_as_one(first: str, second: str) -> None:
    """What a client of either replica sees, checked across both (ports or workers behind one)."""
    async with aiohttp.ClientSession() as session:
        status, created = await call(session, "POST", f"{first}/v1/webhooks", minimal(name="Across"))
        assert status == 201, created
        hook = f"/v1/webhooks/{created['id']}"
        assert await call(session, "GET", second + hook) == (200, created)
        status, listed = await call(session, "GET", f"{second}/v1/webhooks")
        assert status == 200 and [item["id"] for item in listed["data"]] == [created["id"]]
        status, patched = await call(session, "PATCH", second + hook, {"name": "Renamed"})
        assert status == 200 and patched["name"] == "Renamed"
        assert (await call(session, "GET", first + hook))[1]["name"] == "Renamed"
        assert (await call(session, "DELETE", second + hook))[0] == 200
        assert (await call(session, "GET", first + hook))[0] == 404

        # The journal is one: every request, whichever replica took it, oldest first, on either.
        for base in (first, second):
            status, journal = await call(session, "GET", f"{base}/__mock/requests")
            assert [(e["method"], e["status"]) for e in journal["requests"]] == [
                ("POST", 201), ("GET", 200), ("GET", 200), ("PATCH", 200), ("GET", 200), ("DELETE", 200),
                ("GET", 404)]
            assert all(e["headers"].get("x-api-key") != AUTH["X-API-KEY"] for e in journal["requests"])

        # A `times: 3` rule answers exactly three times in all, however the requests are spread.
        assert (await call(session, "PUT", f"{first}/__mock/scenario", {"name": "three"}))[0] == 200
        assert (await call(session, "GET", f"{second}/__mock/scenario"))[1]["active"] == "three"
        statuses = await asyncio.gather(*(call(session, "POST", f"{(first, second)[i % 2]}/v1/webhooks",
                                               minimal(name=f"n{i}")) for i in range(200)))
        assert sorted(s for s, _ in statuses).count(500) == 3
        assert [s for s, _ in statuses].count(201) == 197
        status, view = await call(session, "GET", f"{second}/__mock/scenarios/three")
        assert view["rules"][0]["answered"] == 3

        # A client binding made on one replica applies on the other; the key is never stored.
        await call(session, "PUT", f"{first}/__mock/scenario", {"name": None})
        assert (await call(session, "PUT", f"{first}/__mock/scenario",
                           {"name": "unauthorised", "api_key": "bound-key"}))[0] == 200
        assert (await call(session, "POST", f"{second}/v1/webhooks", minimal(),
                           {"X-API-KEY": "bound-key"}))[0] == 401
        assert (await call(session, "POST", f"{second}/v1/webhooks", minimal()))[0] == 201

        # A scenario added at run time on one replica answers on the other at once.
        async with session.put(f"{second}/__mock/scenarios/teapot", data="rules:\n  - respond: {status: 404}\n",
                               headers={**AUTH, "Content-Type": "application/yaml"}) as resp:
            assert resp.status == 201, await resp.text()
        status, _ = await call(session, "GET", f"{first}/v1/webhooks/whk_x", headers={"X-Mock-Scenario": "teapot"})
        assert status == 404
        assert "teapot" in [s["name"] for s in (await call(session, "GET", f"{first}/__mock/scenarios"))[1]["scenarios"]]

        # A reset on one is a reset on every replica.
        assert (await call(session, "POST", f"{second}/__mock/reset"))[0] == 200
        status, journal = await call(session, "GET", f"{first}/__mock/requests")
        assert journal["requests"] == []
        assert (await call(session, "GET", f"{first}/v1/webhooks"))[1]["data"] == []
        assert (await call(session, "POST", f"{first}/v1/webhooks", minimal(), {"X-API-KEY": "bound-key"}))[0] == 201
        status, _ = await call(session, "GET", f"{first}/v1/webhooks/whk_x", headers={"X-Mock-Scenario": "teapot"})
        assert status == 400  # the run-time scenario went with the reset, on the replica that did not reset


async def test_two_processes_on_one_state_store_behave_as_one_mock(pair):
    first, second = pair
    await behave_as_one(first.url, second.url)


async def test_two_workers_behind_one_port_behave_as_one_mock(redis_url, redis_prefix, scenarios):
    replica = serve("--workers", "2", "--state", redis_url, "--state-prefix", redis_prefix,
                    "--scenarios-dir", str(scenarios))
    try:
        workers = [int(pid) for pid in replica.line.partition("pids ")[2].strip().rstrip(")").split()]
        assert len(workers) == 2 and all(_alive(pid) for pid in workers)
        await behave_as_one(replica.url, replica.url)
    finally:
        assert replica.stop() == 0
    assert not any(_alive(pid) for pid in workers)  # SIGTERM reached every worker


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# ---------------------------------------------------------------- faults


def test_workers_without_a_shared_state_store_are_refused_with_one_line():
    result = subprocess.run([sys.executable, "-m", "mockserver", "serve", "--port", "0", "--workers", "2"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "--workers 2 needs --state" in result.stderr


def test_an_unreachable_state_store_stops_start_up_naming_it_without_its_password():
    from redis_server import free_port

    port = free_port()
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "mockserver", "serve", "--port", "0", "--state",
                             f"redis://:hunter2-secret@127.0.0.1:{port}/3"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert f"cannot reach the state store at redis://127.0.0.1:{port}/3" in result.stderr
    assert "hunter2" not in result.stderr and "Traceback" not in result.stderr
    assert time.monotonic() - started < 15


async def create_many(session: aiohttp.ClientSession, bases: list[str], until: float,
                      acknowledged: list[tuple[str, str]], statuses: list[int]) -> None:
    """Create webhooks, round robin over ``bases``, until the time is up; keep what was answered 201."""
    i = 0
    while time.monotonic() < until:
        base = bases[i % len(bases)]
        i += 1
        try:
            async with session.post(f"{base}/v1/webhooks", json=minimal(name=f"n{i}"), headers=AUTH) as resp:
                body = await resp.json(content_type=None)
                statuses.append(resp.status)
                if resp.status == 201:
                    acknowledged.append((body["id"], resp.headers["X-REQUEST-ID"]))
        except (aiohttp.ClientError, asyncio.TimeoutError):
            statuses.append(0)  # the connection died with its process: nothing was acknowledged
            await asyncio.sleep(0.01)


async def all_kept(session: aiohttp.ClientSession, base: str, acknowledged: list[tuple[str, str]]) -> None:
    """Every acknowledged create is in the store and the journal, seen from ``base``."""
    status, journal = await call(session, "GET", f"{base}/__mock/requests")
    journaled = {e["request_id"] for e in journal["requests"]}
    missing = [rid for _, rid in acknowledged if rid not in journaled]
    assert not missing, f"{len(missing)} acknowledged request(s) not in the journal"
    statuses = await asyncio.gather(*(call(session, "GET", f"{base}/v1/webhooks/{hook}") for hook, _ in acknowledged))
    assert [s for s, _ in statuses].count(200) == len(acknowledged)


async def test_a_replica_killed_under_load_loses_nothing_it_acknowledged(pair):
    first, second = pair
    acknowledged: list[tuple[str, str]] = []
    statuses: list[int] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        until = time.monotonic() + 3
        load = [asyncio.create_task(create_many(session, [first.url, second.url], until, acknowledged, statuses))
                for _ in range(8)]
        await asyncio.sleep(1.2)
        first.proc.send_signal(signal.SIGKILL)
        await asyncio.gather(*load)
        assert first.proc.wait(10) == -signal.SIGKILL
        assert statuses.count(0) >= 1 and len(acknowledged) > 50  # it really died mid-load
        assert set(statuses) <= {0, 201}
        await all_kept(session, second.url, acknowledged)


async def test_a_lost_state_store_is_a_503_then_serving_resumes_by_itself_with_nothing_lost(redis_prefix):
    server = RedisServer(persist=True).start()
    replica = serve("--state", server.url, "--state-prefix", redis_prefix)
    try:
        acknowledged: list[tuple[str, str]] = []
        statuses: list[int] = []
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
            await create_many(session, [replica.url], time.monotonic() + 0.5, acknowledged, statuses)
            server.stop()
            for method, path in (("GET", "/v1/webhooks"), ("POST", "/v1/webhooks"), ("GET", "/__mock/requests")):
                started = time.monotonic()
                async with session.request(method, replica.url + path, json=minimal(), headers=AUTH) as resp:
                    body = await resp.json()
                    assert resp.status == 503, body
                    assert (body["type"], body["code"]) == ("API_ERROR", "INTERNAL_ERROR")
                    assert "state store is unreachable" in body["message"]
                assert time.monotonic() - started < 6  # a short bounded wait, never a hang
            server.start()
            assert (await call(session, "GET", f"{replica.url}/v1/webhooks"))[0] == 200
            await create_many(session, [replica.url], time.monotonic() + 0.3, acknowledged, statuses)
            assert set(statuses) == {201} and acknowledged
            await all_kept(session, replica.url, acknowledged)
        assert replica.proc.poll() is None
    finally:
        replica.stop()
        server.close()


# ---------------------------------------------------------------- deliveries


class Receiver:
    """A webhook receiver: records each delivery's event id, in arrival order."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.events: list[str] = []
        self.delay_s = delay_s
        self.app = aiohttp.web.Application()
        self.app.router.add_post("/hook", self.handle)

    async def handle(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        body = await request.json()
        self.events.append(body["data"]["n"])  # each event is marked with its place in the emitting order
        await asyncio.sleep(self.delay_s)
        return aiohttp.web.Response(status=204)


async def until(predicate: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "not reached in time"
        await asyncio.sleep(0.02)


async def emit_each(session: aiohttp.ClientSession, bases: list[str], count: int) -> tuple[list[int], list[str]]:
    """Emit ``count`` events, one after another, round robin over ``bases``; their marks in order,
    and their event ids."""
    ids = []
    for i in range(count):
        status, result = await call(session, "POST", f"{bases[i % len(bases)]}/__mock/events",
                                    {"type": "INVOICE.CREATED", "data": {"n": i}})
        assert status == 202 and len(result["webhooks"]) == 1, result
        ids.append(result["event_id"])
    return list(range(count)), ids


async def test_deliveries_from_two_replicas_arrive_in_order_each_once(pair, aiohttp_server):
    first, second = pair
    receiver = Receiver()
    server = await aiohttp_server(receiver.app)
    async with aiohttp.ClientSession() as session:
        status, hook = await call(session, "POST", f"{first.url}/v1/webhooks",
                                  minimal(url=f"http://127.0.0.1:{server.port}/hook"))
        assert status == 201
        sent, event_ids = await emit_each(session, [first.url, second.url], 30)
        await until(lambda: len(receiver.events) >= 30, 15)
        await asyncio.sleep(0.3)  # time for a duplicate to show, were there one
        assert receiver.events == sent
        for base in (first.url, second.url):
            status, seen = await call(session, "GET", f"{base}/__mock/deliveries")
            assert [(a["event_id"], a["attempt"], a["status"]) for a in seen["deliveries"]] == [
                (event, 1, 204) for event in event_ids]
            assert seen["webhooks"] == [{"webhook_id": hook["id"], "tenant": seen["webhooks"][0]["tenant"],
                                         "queued": 0, "dropped": 0, "delivering": False, "penalty_box": None}]


async def test_a_killed_replicas_deliveries_are_taken_over_when_its_lease_expires(pair, aiohttp_server):
    first, second = pair
    receiver = Receiver(delay_s=0.25)
    server = await aiohttp_server(receiver.app)
    async with aiohttp.ClientSession() as session:
        status, hook = await call(session, "POST", f"{second.url}/v1/webhooks",
                                  minimal(url=f"http://127.0.0.1:{server.port}/hook"))
        sent, _ = await emit_each(session, [first.url], 10)  # the first replica holds the line
        await until(lambda: len(receiver.events) >= 2, 10)
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(10)
        held_by_the_dead = len(receiver.events)
        await until(lambda: set(sent) <= set(receiver.events), 20)
        # At least once, in order: the event in flight when it died may come twice, nothing is lost.
        distinct = list(dict.fromkeys(receiver.events))
        assert distinct == sent
        assert len(receiver.events) - len(sent) <= 1
        assert held_by_the_dead < len(sent)  # the survivor really took over



def test_the_state_stores_password_stays_out_of_the_workers_arguments_and_every_answer(redis_prefix):
    with RedisServer(password="s3cret-redis-pass") as server:
        replica = serve("--workers", "2", "--state-prefix", redis_prefix, "--state", server.url)
        try:
            pids = [int(pid) for pid in replica.line.partition("pids ")[2].strip().rstrip(")").split()]
            for pid in pids:
                assert b"s3cret" not in Path(f"/proc/{pid}/cmdline").read_bytes()

            async def look() -> None:
                async with aiohttp.ClientSession() as session:
                    for path in ("/__mock/scenario", "/__mock/requests", "/__mock/deliveries"):
                        async with session.get(replica.url + path) as resp:
                            assert resp.status == 200 and "s3cret" not in await resp.text()
            asyncio.run(look())
        finally:
            assert replica.stop() == 0
