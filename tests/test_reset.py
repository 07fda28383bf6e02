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


async def _straddling_create(client, after_reset=None, **headers):
    """A create whose body finishes arriving after a reset (and after ``after_reset``, the next
    test's set-up); returns its answer."""
    sent_half, go_on = asyncio.Event(), asyncio.Event()

    async def body():
        yield b'{"url": "https://example.com/hook", '
        sent_half.set()
        await go_on.wait()
        yield b'"name": "late", "reference": "late"}'

    pending = asyncio.ensure_future(client.post("/v1/webhooks", data=body(), headers={**HEADERS, **headers}))
    await sent_half.wait()
    await asyncio.sleep(0.1)
    assert (await client.post("/__mock/reset")).status == 200
    if after_reset is not None:
        await after_reset()
    go_on.set()
    return await pending


async def test_a_request_straddling_a_reset_does_not_shift_the_seeded_sequence(make_client):
    client = await make_client(seed=99)
    await client.post("/__mock/reset")
    alone = await created(await client.post("/v1/webhooks", json=minimal(), headers=AUTH))
    await client.post("/__mock/reset")
    assert (await _straddling_create(client)).status == 201
    after = await created(await client.post("/v1/webhooks", json=minimal(), headers=AUTH))
    assert after["id"] == alone["id"] and after["secret_key"] == alone["secret_key"]


async def test_a_request_straddling_a_reset_uses_up_no_rule_of_the_next_test(client):
    async def next_test_selects_flaky():
        assert (await client.put("/__mock/scenario", json={"name": "flaky"})).status == 200

    resp = await _straddling_create(client, after_reset=next_test_selects_flaky)
    assert resp.status == 201  # answered, but without the next test's scenario
    statuses = [(await client.post("/v1/webhooks", json=minimal(), headers=AUTH)).status for _ in range(3)]
    assert statuses == [500, 500, 201]
