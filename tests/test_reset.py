"""Reset is a barrier: work that started before it leaves no trace after it, and with a seed
what follows a reset depends only on the seed."""

from __future__ import annotations

import asyncio

from conftest import AUTH, created, minimal

HEADERS = {**AUTH, "Content-Type": "application/json"}


async def test_a_request_in_flight_during_a_reset_is_not_journaled_after_it(client):
    slow = asyncio.ensure_future(client.post("/v1/webhooks", json=minimal(), headers={**AUTH, "X-Mock-Scenario": "slow"}))
    await asyncio.sleep(0.3)  # the slow rule holds the answer for 1.5 s
    assert (await client.post("/__mock/reset")).status == 200
    resp = await slow
    assert resp.status == 201  # the client still gets its answer
    journal = await (await client.get("/__mock/requests")).json()
    assert journal["requests"] == [], journal


async def test_a_create_whose_body_arrives_after_a_reset_is_not_stored(client):
    sent_half = asyncio.Event()
    go_on = asyncio.Event()

    async def body():
        yield b'{"url": "https://example.com/hook", '
        sent_half.set()
        await go_on.wait()
        yield b'"name": "late", "reference": "late"}'

    pending = asyncio.ensure_future(client.post("/v1/webhooks", data=body(), headers=HEADERS))
    await sent_half.wait()
    await asyncio.sleep(0.1)
    assert (await client.post("/__mock/reset")).status == 200
    go_on.set()
    resp = await pending
    assert resp.status == 201
    hook = await resp.json()
    assert (await client.get(f"/v1/webhooks/{hook['id']}", headers=AUTH)).status == 404
    listing = await (await client.get("/v1/webhooks", headers=AUTH)).json()
    assert listing["data"] == []
    journal = await (await client.get("/__mock/requests", params={"method": "POST"})).json()
    assert journal["requests"] == []


async def test_reset_reseeds_so_ids_depend_only_on_the_seed(make_client):
    client = await make_client(seed=1234)

    async def run() -> list[tuple[str, str, str]]:
        out = []
        for _ in range(3):
            resp = await client.post("/v1/webhooks", json=minimal(), headers=AUTH)
            body = await created(resp)
            out.append((body["id"], body["secret_key"], resp.headers["X-REQUEST-ID"]))
        return out

    first = await run()
    await client.post("/__mock/reset")
    second = await run()
    assert first == second
    # a test that ran other requests before the reset still sees the same sequence after it
    await run()
    await client.post("/__mock/reset")
    assert await run() == first


async def test_a_dropped_connection_is_journaled_with_no_status_and_its_fault(make_client, tmp_path):
    directory = tmp_path / "s"
    directory.mkdir()
    (directory / "drop.yaml").write_text("rules:\n  - respond: {status: 500, fault: reset}\n")
    client = await make_client(scenarios_dir=directory, scenario="drop")
    try:
        await client.post("/v1/webhooks", json=minimal(), headers=AUTH)
    except Exception:
        pass
    entries = (await (await client.get("/__mock/requests")).json())["requests"]
    assert [(e["status"], e["fault"]) for e in entries] == [(None, "reset")]
