"""Load without loss, bounded memory, graceful shutdown: against `mockserver serve` as a process;
and deliveries over many webhooks, in process, where the server loop's tasks can be counted."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time

import aiohttp
import pytest
from aiohttp import web

from conftest import SCENARIOS, SPEC, minimal
from mockserver import create_app
from mockserver.server import ServerThread

pytestmark = pytest.mark.slow


def start(*args: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "mockserver", "serve", "--port", "0", "--log-level", "WARNING",
                             *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.startswith("listening on "), proc.stderr.read() if proc.poll() is not None else line
    return proc, line.split()[-1]


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


KINDS = ["valid", "invalid", "scripted", "bound", "unauthenticated"]


async def blast(base: str, count: int, concurrency: int = 64) -> list[tuple[str, int, str]]:
    """``count`` mixed requests over ``concurrency`` keep-alive connections: (kind, status, request id)."""
    connector = aiohttp.TCPConnector(limit=concurrency)
    results: list[tuple[str, int, str]] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)

    async with aiohttp.ClientSession(connector=connector) as session:
        async def worker() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                kind = KINDS[i % len(KINDS)]
                headers = {"X-API-KEY": "soak"}
                body = minimal(name=f"n{i}")
                if kind == "invalid":
                    body = {"url": "nope"}
                elif kind == "scripted":
                    headers["X-Mock-Scenario"] = "internal-error"
                elif kind == "bound":
                    headers = {"X-API-KEY": "bound-client"}
                elif kind == "unauthenticated":
                    headers = {}
                async with session.post(f"{base}/v1/webhooks", json=body, headers=headers) as resp:
                    await resp.read()
                    results.append((kind, resp.status, resp.headers["X-REQUEST-ID"]))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results


EXPECTED = {"valid": 201, "invalid": 400, "scripted": 500, "bound": 403, "unauthenticated": 401}


def test_soak_10000_mixed_requests_lose_nothing():
    proc, base = start("--journal-limit", "20000")
    try:
        asyncio.run(_bind(base, "missing-permission", "bound-client"))
        started = time.monotonic()
        results = asyncio.run(blast(base, 10_000))
        elapsed = time.monotonic() - started
        journal = asyncio.run(_journal(base))
    finally:
        proc.send_signal(signal.SIGTERM)
        _, logs = proc.communicate(timeout=30)
    assert len(results) == 10_000
    wrong = [(k, s) for k, s, _ in results if s != EXPECTED[k]]
    assert not wrong, wrong[:10]
    unscripted_5xx = [r for r in results if r[1] >= 500 and r[0] != "scripted"]
    assert not unscripted_5xx
    ids = [e["request_id"] for e in journal["requests"]]
    assert journal["dropped"] == 0
    assert len(ids) == len(set(ids)) == 10_000
    assert set(ids) == {rid for _, _, rid in results}
    assert proc.returncode == 0, logs
    assert "ERROR" not in logs and "Traceback" not in logs
    print(f"soak: 10000 requests in {elapsed:.1f} s ({10_000 / elapsed:.0f}/s) at 64 connections")


def test_journal_bound_drops_oldest_and_memory_stops_growing():
    proc, base = start("--journal-limit", "2000", "--store-limit", "1000")
    try:
        asyncio.run(blast(base, 4_000))
        journal = asyncio.run(_journal(base))
        first = rss_kib(proc.pid)
        asyncio.run(blast(base, 6_000))
        second = rss_kib(proc.pid)
        asyncio.run(blast(base, 6_000))
        third = rss_kib(proc.pid)
        later = asyncio.run(_journal(base))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert len(journal["requests"]) == 2000 and journal["dropped"] == 2000
    assert len(later["requests"]) == 2000 and later["dropped"] == 14_000
    assert len({e["request_id"] for e in later["requests"]}) == 2000
    print(f"rss after 4k/10k/16k requests: {first} / {second} / {third} KiB")
    assert third - second < 5 * 1024, (first, second, third)


async def _bind(base: str, name: str, key: str) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.put(f"{base}/__mock/scenario", json={"name": name, "api_key": key}) as resp:
            assert resp.status == 200


async def _journal(base: str) -> dict:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base}/__mock/requests") as resp:
            return json.loads(await resp.read())


def test_sigterm_lets_in_flight_requests_finish_and_refuses_new_ones():
    proc, base = start("--shutdown-grace", "5")
    port = int(base.rsplit(":", 1)[1])

    async def scenario() -> tuple[int, bool]:
        async with aiohttp.ClientSession() as session:
            slow = asyncio.create_task(session.post(f"{base}/v1/webhooks", json=minimal(),
                                                    headers={"X-API-KEY": "k", "X-Mock-Scenario": "slow"}))
            await asyncio.sleep(0.4)
            proc.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.3)
            refused = False
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
            except OSError:
                refused = True
            resp = await slow
            return resp.status, refused

    status, refused = asyncio.run(scenario())
    proc.communicate(timeout=30)
    assert status == 201
    assert refused
    assert proc.returncode == 0


class _Receiver:
    """A webhook receiver that fails a seeded share of the deliveries it gets."""

    def __init__(self, failure_share: float) -> None:
        self.random = random.Random(7)
        self.failure_share = failure_share
        self.received = 0
        self.failed = 0
        self.app = web.Application()
        self.app.router.add_post("/hook", self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.received += 1
        if self.random.random() < self.failure_share:
            self.failed += 1
            return web.Response(status=503)
        return web.Response(status=204)


def test_deliveries_over_many_webhooks_and_tenants_keep_memory_and_tasks_flat():
    """5,000 webhooks over 500 platforms, each sent an event, a third of them failing (so some end
    in the penalty box with events held behind them), in a store that keeps 500: once the store is
    full, every create evicts a webhook, and its delivery line, queue and task must go with it.
    In process, so the server loop's tasks can be counted; RSS is this process's."""
    server = ServerThread(create_app(scenarios_dir=SCENARIOS, hot_reload=False, fast_retries=True,
                                     delivery_timeout_s=2, store_limit=500, journal_limit=500,
                                     delivery_queue_limit=20)).start()
    receiver = _Receiver(failure_share=0.35)
    marks: dict[int, tuple[int, int]] = {}

    def server_tasks() -> int:
        return server.call(lambda: len(asyncio.all_tasks(server.loop)))

    async def drive() -> None:
        runner = web.AppRunner(receiver.app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
        connector = aiohttp.TCPConnector(limit=16)
        async with aiohttp.ClientSession(connector=connector) as session:
            async def one(i: int) -> None:
                platform = {"X-API-KEY": "soak", "x-platform-id": f"plat_{i % 500}"}
                async with session.post(f"{server.url}/v1/webhooks", json=minimal(url=url, name=f"n{i}"),
                                        headers=platform) as resp:
                    assert resp.status == 201, await resp.text()
                async with session.post(f"{server.url}/__mock/events", json={"type": "INVOICE.CREATED"},
                                        headers={"x-platform-id": platform["x-platform-id"]}) as resp:
                    assert resp.status == 202, await resp.text()

            async def settled() -> dict:
                deadline = time.monotonic() + 10
                while True:
                    async with session.get(f"{server.url}/__mock/deliveries") as resp:
                        listing = await resp.json()
                    if not any(line["delivering"] for line in listing["webhooks"]):
                        return listing
                    assert time.monotonic() < deadline, "deliveries did not settle"
                    await asyncio.sleep(0.02)

            for thousand in range(1, 6):
                for start in range(0, 1000, 16):
                    await asyncio.gather(*(one((thousand - 1) * 1000 + start + j)
                                           for j in range(min(16, 1000 - start))))
                listing = await settled()
                assert len(listing["webhooks"]) <= 500
                marks[thousand] = (rss_kib(os.getpid()), await asyncio.to_thread(server_tasks))
        await runner.cleanup()

    try:
        started = time.monotonic()
        asyncio.run(drive())
        elapsed = time.monotonic() - started
    finally:
        server.stop()
    print(f"deliveries soak in {elapsed:.1f} s: {receiver.received} deliveries, {receiver.failed} failed; "
          f"(rss KiB, server tasks) per thousand: {marks}")
    assert receiver.failed > 100 and receiver.received > 5000
    (rss_2, tasks_2), (rss_5, tasks_5) = marks[2], marks[5]
    assert tasks_5 - tasks_2 <= 5, marks
    assert rss_5 - rss_2 < 6 * 1024, marks
