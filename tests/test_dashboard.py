"""The dashboard at /__mock/: its routes and event stream over plain HTTP, and the page itself in a
real Chromium driven by Playwright against a real server on a port.

The browser is Debian's ``chromium`` (``apt-get install chromium``) or the one
``python -m playwright install chromium`` fetches; without either, every browser test fails and
says so. Each browser test saves a screenshot under its ``tmp_path``; the README's picture,
``docs/dashboard.png``, is written by ``test_the_readme_screenshot`` when it is missing or when
``MOCKSERVER_DOCS_SCREENSHOT=1`` is set (so a test run does not change a tracked file).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from conftest import AUTH, CONTRACT, ROOT, api_error, minimal
from mockserver.signing import verify

SIGNING = CONTRACT.deliveries.signing
TOKEN = "dash-admin-token-0451"


# ================================================================== plain HTTP


class Stream:
    """Reads Server-Sent Events from an aiohttp response, as ``curl -N`` would show them."""

    def __init__(self, resp: Any) -> None:
        self.resp = resp

    async def next(self, kind: str | None = None, timeout: float = 5.0) -> dict[str, Any]:
        """The next event (of ``kind``), skipping the others."""
        async with asyncio.timeout(timeout):
            while True:
                event = await self._one()
                if kind is None or event["event"] == kind:
                    return event

    async def _one(self) -> dict[str, Any]:
        fields: dict[str, str] = {}
        data: list[str] = []
        while True:
            raw = await self.resp.content.readline()
            if not raw:
                raise EOFError("the stream ended")
            line = raw.decode().rstrip("\n")
            if line == "":
                if data:
                    return {"event": fields.get("event", "message"), "id": int(fields["id"]),
                            "data": json.loads("\n".join(data))}
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                data.append(value)
            else:
                fields[name] = value


async def open_stream(client: Any, headers: dict[str, str] | None = None) -> Stream:
    resp = await client.get("/__mock/stream", headers=headers or {})
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"] == "text/event-stream"
    first = await resp.content.readline()
    assert first == b"retry: 1000\n"
    return Stream(resp)


async def test_the_page_and_its_files_come_from_the_package(make_client):
    client = await make_client()
    resp = await client.get("/__mock/")
    page = await resp.text()
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/html")
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
    assert 'data-token="none"' in page and 'src="ui/app.js"' in page and "http" not in page.split("<body")[0]
    for name, media in [("app.js", "text/javascript"), ("app.css", "text/css")]:
        resp = await client.get(f"/__mock/ui/{name}")
        assert resp.status == 200 and resp.headers["Content-Type"].startswith(media)
        assert len(await resp.read()) > 1000
    await api_error(await client.get("/__mock/ui/nope.js"), 404, "RESOURCE_NOT_FOUND")
    resp = await client.get("/__mock", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == "/__mock/"
    journal = await (await client.get("/__mock/requests")).json()
    assert journal["requests"] == []  # the dashboard's own routes are not contract requests


async def test_with_an_admin_token_the_page_asks_for_it_and_every_data_route_needs_it(make_client):
    client = await make_client(admin_token=TOKEN)
    page = await client.get("/__mock/")
    text = await page.text()
    assert page.status == 200 and 'data-token="required"' in text and TOKEN not in text
    assert (await client.get("/__mock/ui/app.js")).status == 200
    for method, path in [("GET", "/__mock/stream"), ("GET", "/__mock/contract"), ("GET", "/__mock/webhooks"),
                         ("GET", "/__mock/scenarios/uses"), ("POST", "/__mock/deliveries/whk_x/release")]:
        await api_error(await client.request(method, path), 401, "UNAUTHORISED")
        await api_error(await client.request(method, path, headers={"X-Admin-Token": "wrong"}), 401, "UNAUTHORISED")
    stream = await open_stream(client, {"X-Admin-Token": TOKEN})
    await client.post("/v1/webhooks", json=minimal(), headers=AUTH)
    assert (await stream.next("request"))["data"]["status"] == 201
    stream = await open_stream(client, {"Authorization": f"Bearer {TOKEN}"})
    stream.resp.close()


async def test_the_stream_obeys_the_browser_guards(make_client):
    client = await make_client()
    for headers in ({"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors"}):
        await api_error(await client.get("/__mock/stream", headers=headers), 403, "USER_NOT_ALLOWED")
    resp = await client.get("/__mock/stream", headers={"Host": "rebound.example"})
    await api_error(resp, 403, "USER_NOT_ALLOWED")
    await api_error(await client.put("/__mock/stream"), 405, "INVALID_OPERATION")


async def test_the_stream_tells_of_requests_scenarios_and_resets(make_client):
    client = await make_client()
    stream = await open_stream(client)
    body = minimal(url=None, authentication_type="PASSWORD", username="u", password="hunter2-secret")
    del body["url"]
    resp = await client.post("/v1/webhooks", json=body, headers={"X-API-KEY": "stream-key-7781"})
    assert resp.status == 400
    event = await stream.next("request")
    entry = event["data"]
    assert (entry["method"], entry["path"], entry["status"]) == ("POST", "/v1/webhooks", 400)
    assert entry["operation"] == "postWebhooks" or entry["operation"]  # the operation that answered
    assert entry["answer"]["field"] == "url" and "url" in entry["answer"]["message"]
    assert entry["answer"]["headers"]["X-REQUEST-ID"] == entry["request_id"] == resp.headers["X-REQUEST-ID"]
    assert entry["body"]["password"] == "[redacted]"
    assert "stream-key-7781" not in json.dumps(entry) and "hunter2-secret" not in json.dumps(entry)
    assert entry["headers"]["x-api-key"].startswith("[redacted] sha256:")

    resp = await client.put("/__mock/scenario", json={"name": "flaky"})
    assert resp.status == 200
    event = await stream.next("scenario")
    assert event["data"]["active"] == "flaky"
    await client.put("/__mock/scenario", json={"name": "unauthorised", "api_key": "bound-key-1234"})
    bindings = (await stream.next("scenario"))["data"]["bindings"]
    assert bindings and "bound-key-1234" not in json.dumps(bindings)

    resp = await client.post("/v1/webhooks", json=minimal(), headers=AUTH)
    assert resp.status == 500
    entry = (await stream.next("request"))["data"]
    assert (entry["scenario"], entry["answer"]["status"]) == ("flaky", 500)
    uses = (await (await client.get("/__mock/scenarios/uses")).json())["uses"]
    assert [(u["scenario"], u["client"], u["used"]) for u in uses] == [("flaky", None, 1)]

    await client.post("/__mock/reset")
    event = await stream.next("reset")
    assert event["data"]["scenario"]["active"] is None


async def test_a_reconnecting_client_gets_the_events_it_missed(make_client):
    client = await make_client()
    watching = await open_stream(client)  # someone listens throughout, so events are kept
    for _ in range(3):
        await client.get("/v1/webhooks/whk_missing", headers=AUTH)
    ids = [(await watching.next("request"))["id"] for _ in range(3)]
    again = await open_stream(client, {"Last-Event-ID": str(ids[0])})
    replayed = [await again.next("request") for _ in range(2)]
    assert [e["id"] for e in replayed] == ids[1:]
    assert replayed[0]["data"]["answer"]["status"] == 404


async def test_a_client_that_stops_reading_is_dropped_and_cut_off(make_client):
    from mockserver.http import MOCK

    client = await make_client()
    bus = client.server.app[MOCK].bus
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(f"GET /__mock/stream HTTP/1.1\r\nHost: 127.0.0.1:{client.server.port}\r\n\r\n".encode())
    await writer.drain()
    assert (await reader.readline()).startswith(b"HTTP/1.1 200")
    watching = await open_stream(client)  # reads everything: must not be dropped
    big = minimal(name="x" * 60_000)
    sent = 0
    while bus.dropped == 0:  # the slow client reads nothing more: its queue fills up
        assert sent < 2000, "the slow subscriber was never dropped"
        assert (await client.post("/v1/webhooks", json=big, headers=AUTH)).status == 201
        sent += 1
        await watching.next("request")
    assert bus.subscribers == 1  # only the reader that keeps up is left
    async with asyncio.timeout(5):  # and the connection of the one that fell behind is cut
        while await reader.read(1 << 16):
            pass
    writer.close()


async def test_nothing_is_built_for_the_stream_while_nobody_listens(make_client, monkeypatch):
    from mockserver import dashboard

    built = []
    monkeypatch.setattr(dashboard, "request_event", lambda mock, rec, resp: built.append(resp) or {})
    client = await make_client()
    assert (await client.post("/v1/webhooks", json=minimal(), headers=AUTH)).status == 201
    assert built == []
    stream = await open_stream(client)
    assert (await client.post("/v1/webhooks", json=minimal(), headers=AUTH)).status == 201
    await stream.next("request")
    assert len(built) == 1


async def test_the_contract_webhooks_and_scenario_routes(make_client):
    client = await make_client()
    operations = (await (await client.get("/__mock/contract")).json())["operations"]
    assert len(operations) == len(CONTRACT.operations)
    release = next(op for op in operations if op["path"].endswith("/send-penalty-box-payload"))
    assert release["method"] == "POST" and release["behaviour"]["action"] == "send-penalty-box-payload"
    hook = await (await client.post("/v1/webhooks", json=minimal(), headers=AUTH)).json()
    listing = await (await client.get("/__mock/webhooks")).json()
    [shown] = listing["webhooks"]
    assert shown["id"] == hook["id"] and shown["url"] == minimal()["url"] and shown["penalty_box"] is None
    assert shown["tenant"].startswith("api_key:sha256:")
    assert hook["secret_key"] not in json.dumps(listing)  # signing secrets stay out of the dashboard
    assert "INVOICE.CREATED" in listing["event_types"]
    assert listing["signing"] == {"timestamp_header": SIGNING.timestamp_header,
                                  "signature_header": SIGNING.signature_header}


class Receiver:
    """A webhook receiver on a real port that fails (503) until told otherwise; works from any thread."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.failing = True
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.received.append({"headers": dict(self.headers), "body": body})
                self.send_response(503 if receiver.failing else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    rec = Receiver()
    yield rec
    rec.stop()


async def test_delivery_events_carry_each_attempt_and_the_penalty_box_and_release_opens_it(make_client, receiver):
    client = await make_client(fast_retries=True, delivery_timeout_s=2)
    stream = await open_stream(client)
    hook = await (await client.post("/v1/webhooks", json=minimal(url=receiver.url), headers=AUTH)).json()
    await api_error(await client.post(f"/__mock/deliveries/{hook['id']}/release"), 409, "INVALID_OPERATION")
    assert (await client.post("/__mock/events", json={"type": "INVOICE.CREATED"})).status == 202
    attempts = [(await stream.next("delivery"))["data"] for _ in range(CONTRACT.deliveries.retries.attempts)]
    assert [a["attempt"]["status"] for a in attempts] == [503] * len(attempts)
    assert [a["attempt"]["attempt"] for a in attempts] == list(range(1, len(attempts) + 1))
    box = attempts[-1]["webhook"]["penalty_box"]  # the event tells the line as it is after that attempt
    assert box is not None and box["event_type"] == "INVOICE.CREATED"
    assert all(a["webhook"]["penalty_box"] is None for a in attempts[:-1])

    receiver.failing = False
    resp = await client.post(f"/__mock/deliveries/{hook['id']}/release")
    result = await resp.json()
    assert resp.status == 200 and result[CONTRACT.deliveries.result.successful] is True, result
    released = (await stream.next("delivery"))["data"]
    assert released["attempt"]["status"] == 204 and released["webhook"]["penalty_box"] is None
    assert verify(hook["secret_key"], receiver.received[-1]["body"], receiver.received[-1]["headers"], scheme=SIGNING)
    await api_error(await client.post(f"/__mock/deliveries/{hook['id']}/release"), 409, "INVALID_OPERATION")


# ================================================================== in a real browser

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
NO_BROWSER = ("No Chromium to run the dashboard tests in. Install Debian's package (apt-get install -y chromium; "
              "`make test` and .ci/run do) or Playwright's own build (python -m playwright install chromium), "
              "or point MOCKSERVER_CHROMIUM at a Chromium binary.")


def _chromium_path() -> str | None:
    named = os.environ.get("MOCKSERVER_CHROMIUM")
    if named:
        return named
    return next((found for name in ("chromium", "chromium-browser") if (found := shutil.which(name))), None)


@pytest.fixture
def browser():
    """One Chromium per test: Playwright's sync API marks its event loop as running in this thread
    for as long as it is started, which the async tests that may follow on this worker cannot share."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        pytest.fail(f"Playwright is not installed ({exc}): pip install -e '.[test]'", pytrace=False)
    playwright = sync_playwright().start()
    path = _chromium_path()
    try:
        launched = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
    except Exception as exc:  # Playwright raises its own Error with the reason
        playwright.stop()
        where = path or "Playwright's own Chromium"
        pytest.fail(f"{NO_BROWSER}\n({where} did not start: {str(exc).splitlines()[0]})", pytrace=False)
    yield launched
    launched.close()
    playwright.stop()


class Dashboard:
    """One mock on a port with the dashboard open in a fresh browser context."""

    def __init__(self, server: Any, context: Any) -> None:
        self.server = server
        self.context = context
        self.page = context.new_page()
        self.console: list[str] = []
        self.page.on("console", lambda msg: self.console.append(f"{msg.type}: {msg.text}")
                     if msg.type in ("error", "warning") else None)
        self.page.on("pageerror", lambda exc: self.console.append(f"pageerror: {exc}"))
        self.page.goto(server.url + "/__mock/")

    @property
    def url(self) -> str:
        return self.server.url

    def live(self) -> None:
        from playwright.sync_api import expect

        expect(self.page.locator("#connection")).to_have_text("live", timeout=5000)

    def call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
             ) -> tuple[int, Any]:
        """A request from an ordinary HTTP client, as the code under test would make it."""
        data = json.dumps(body).encode() if body is not None else None
        sent = {"Content-Type": "application/json", **AUTH, **(headers or {})}
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=sent)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                raw, status = resp.read(), resp.status
        except urllib.error.HTTPError as err:
            raw, status = err.read(), err.code
        return status, json.loads(raw) if raw else None

    def assert_no_console_errors(self, allowed: str | None = None) -> None:
        found = [line for line in self.console if not (allowed and re.search(allowed, line))]
        assert found == [], found


@pytest.fixture
def dashboard(live, browser, tmp_path, request):
    opened: list[Dashboard] = []

    def open_dashboard(width: int = 1280, height: int = 800, **options: Any) -> Dashboard:
        server = live(**options)
        context = browser.new_context(viewport={"width": width, "height": height})
        context.set_default_timeout(10_000)
        board = Dashboard(server, context)
        opened.append(board)
        return board

    yield open_dashboard
    for n, board in enumerate(opened):
        # Beside the test's output, whatever happened: what the page showed at the end.
        board.page.screenshot(path=str(tmp_path / f"{request.node.name}-{n}.png"), full_page=True)
        board.context.close()


@pytest.mark.slow
def test_the_page_loads_with_no_console_error_and_is_usable_by_keyboard_and_narrow(dashboard):
    from playwright.sync_api import expect

    board = dashboard()
    page = board.page
    board.live()
    expect(page.locator("#operations tbody tr")).to_have_count(len(CONTRACT.operations))
    expect(page.locator("#scenario-table tbody tr[data-scenario=flaky]")).to_contain_text("first two requests")
    expect(page.locator("#requests-empty")).to_be_visible()
    # Keyboard: the skip link comes first, and Tab reaches the filters.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "filter-status":
            break
    else:
        raise AssertionError("Tab never reached the status filter")
    # A narrow window: one column, nothing wider than the window.
    page.set_viewport_size({"width": 420, "height": 800})
    page.wait_for_timeout(100)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    boxes = [page.locator(sel).bounding_box() for sel in ("#requests", "#scenarios", "#webhooks", "#contract")]
    assert all(b is not None and b["width"] <= 420 for b in boxes)
    assert boxes[0]["y"] < boxes[1]["y"] < boxes[2]["y"] < boxes[3]["y"]  # stacked
    board.assert_no_console_errors()


@pytest.mark.slow
def test_a_request_made_with_an_http_client_appears_within_a_second(dashboard):
    from playwright.sync_api import expect

    board = dashboard()
    board.live()
    started = time.monotonic()
    status, _ = board.call("POST", "/v1/webhooks", minimal())
    assert status == 201
    row = board.page.locator("#request-list li[data-status='201']")
    expect(row).to_have_count(1, timeout=1000)
    assert time.monotonic() - started < 1.0
    expect(row).to_contain_text("/v1/webhooks")
    expect(row).to_contain_text("POST")
    board.assert_no_console_errors()


@pytest.mark.slow
def test_a_400_shows_its_failing_field_and_opens_to_its_headers_body_and_answer(dashboard):
    from playwright.sync_api import expect

    board = dashboard()
    page = board.page
    board.live()
    assert board.call("POST", "/v1/webhooks", minimal(), headers={"X-API-KEY": "page-secret-key-91"})[0] == 201
    body = minimal(authentication_type="PASSWORD", username="u", password="page-password-77")
    del body["url"]
    status, error = board.call("POST", "/v1/webhooks", body, headers={"X-API-KEY": "page-secret-key-91"})
    assert status == 400 and error["field"] == "url"
    row = page.locator("#request-list li[data-status='400']")
    expect(row).to_have_attribute("data-field", "url")
    expect(row.locator(".failure")).to_have_text(f"url: {error['message']}")
    # Filters: by status class, by path, by text.
    page.fill("#filter-status", "4xx")
    expect(page.locator("#request-list li:visible")).to_have_count(1)
    page.fill("#filter-status", "")
    page.fill("#filter-text", error["message"])
    expect(page.locator("#request-list li:visible")).to_have_count(1)
    page.fill("#filter-text", "")
    page.fill("#filter-path", "/v1/nothing")
    expect(page.locator("#request-list li:visible")).to_have_count(0)
    page.fill("#filter-path", "/v1/webhooks")
    expect(page.locator("#request-list li:visible")).to_have_count(2)
    # Opened from the keyboard: headers (redacted as in the journal), body and answer.
    row.locator("button.request-row").focus()
    page.keyboard.press("Enter")
    detail = row.locator(".request-detail")
    expect(detail).to_be_visible()
    expect(row.locator("button.request-row")).to_have_attribute("aria-expanded", "true")
    expect(detail).to_contain_text("[redacted] sha256:")
    expect(detail).to_contain_text('"password": "[redacted]"')
    expect(detail).to_contain_text("Answer: 400")
    expect(detail).to_contain_text(error["code"])
    assert "page-secret-key-91" not in page.content() and "page-password-77" not in page.content()
    board.assert_no_console_errors()


@pytest.mark.slow
def test_selecting_a_scenario_changes_the_next_answer(dashboard):
    from playwright.sync_api import expect

    board = dashboard()
    page = board.page
    board.live()
    page.select_option("#select-name", "internal-error")
    page.click("#select-form button[type=submit]")
    expect(page.locator("#active-scenario")).to_have_text("internal-error")
    status, _ = board.call("POST", "/v1/webhooks", minimal())
    assert status == 500
    expect(page.locator("#request-list li[data-status='500']")).to_contain_text("internal-error")
    expect(page.locator("#scenario-table tr[data-scenario=internal-error] td").nth(3)).to_have_text("1")
    # Bound to one API key, cleared server-wide: only that client gets the scenario.
    page.select_option("#bind-name", "unauthorised")
    page.fill("#bind-credential", "bound-key-5521")
    page.click("#bind-form button[type=submit]")
    expect(page.locator("#bindings li")).to_contain_text("unauthorised")
    page.click("#clear-scenario")
    expect(page.locator("#active-scenario")).to_have_text("none")
    assert board.call("POST", "/v1/webhooks", minimal(), headers={"X-API-KEY": "bound-key-5521"})[0] == 401
    assert board.call("POST", "/v1/webhooks", minimal(), headers={"X-API-KEY": "other-key-5521"})[0] == 201
    assert "bound-key-5521" not in page.content()
    board.assert_no_console_errors()


def _wait(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


@pytest.mark.slow
def test_a_penalty_boxed_webhook_is_released_with_the_button_and_its_held_event_arrives(dashboard, receiver):
    from playwright.sync_api import expect

    board = dashboard(fast_retries=True, delivery_timeout_s=2)
    page = board.page
    board.live()
    status, hook = board.call("POST", "/v1/webhooks", minimal(url=receiver.url))
    assert status == 201
    expect(page.locator(f".webhook[data-webhook-id='{hook['id']}']")).to_contain_text(receiver.url)
    # The event comes from the page's own form.
    page.select_option("#emit-type", "INVOICE.CREATED")
    page.fill("#emit-data", '{"total_amount": "42.00"}')
    page.click("#emit-form button[type=submit]")
    expect(page.locator("#emit-result")).to_contain_text("goes to 1 webhook(s)")
    attempts = CONTRACT.deliveries.retries.attempts
    boxed = page.locator(f".webhook.boxed[data-webhook-id='{hook['id']}']")
    expect(boxed).to_contain_text("In the penalty box")
    expect(page.locator("#attempts tbody tr[data-status='503']")).to_have_count(attempts)
    assert len(receiver.received) == attempts

    receiver.failing = False
    boxed.locator("button.release").click()
    expect(page.locator(".webhook.boxed")).to_have_count(0)
    expect(page.locator("#attempts tbody tr[data-status='204']")).to_have_count(1)
    _wait(lambda: len(receiver.received) == attempts + 1)
    held = receiver.received[-1]
    assert json.loads(held["body"])["data"]["total_amount"] == "42.00"
    assert held["body"] == receiver.received[0]["body"]  # the held event itself, not a new one
    assert verify(hook["secret_key"], held["body"], held["headers"], scheme=SIGNING)
    board.assert_no_console_errors()


@pytest.mark.slow
def test_with_an_admin_token_the_page_works_only_after_the_token_is_given(dashboard):
    from playwright.sync_api import expect

    board = dashboard(admin_token=TOKEN)
    page = board.page
    statuses: list[tuple[int, str]] = []
    page.on("response", lambda resp: statuses.append((resp.status, resp.url)))
    expect(page.locator("#unlock")).to_be_visible()
    expect(page.locator("#board")).to_be_hidden()
    expect(page.locator("#connection")).to_contain_text("locked")
    assert board.call("POST", "/v1/webhooks", minimal())[0] == 201  # made while the page is locked
    page.wait_for_timeout(300)
    assert page.locator("#request-list li").count() == 0
    assert [s for s in statuses if s[0] == 401] == []  # the page did not even try without the token
    # Over plain HTTP the stream needs the token too.
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(board.url + "/__mock/stream", timeout=5)
    assert refused.value.code == 401

    page.fill("#token", "not-the-token")
    page.keyboard.press("Enter")
    expect(page.locator("#token-error")).to_have_text("That is not the admin token.")
    expect(page.locator("#board")).to_be_hidden()

    page.fill("#token", TOKEN)
    page.keyboard.press("Enter")
    board.live()
    expect(page.locator("#request-list li[data-status='201']")).to_have_count(1)  # from the journal
    assert board.call("POST", "/v1/webhooks", {"name": "x"})[0] == 400
    expect(page.locator("#request-list li[data-status='400']")).to_have_attribute("data-field", "url")
    page.reload()  # the token lasts as long as the tab
    board.live()
    expect(page.locator("#request-list li")).to_have_count(2)
    assert TOKEN not in page.content()
    # The one error is the browser's note of the 401 the wrong token got.
    board.assert_no_console_errors(allowed=r"status of 401")
    assert sum(1 for s in statuses if s[0] == 401) == 1


@pytest.mark.slow
def test_the_readme_screenshot(dashboard, receiver, tmp_path):
    """docs/dashboard.png: 1280x800 with requests, a scenario and a webhook (one in the penalty box)."""
    from playwright.sync_api import expect

    board = dashboard(fast_retries=True, delivery_timeout_s=2)
    page = board.page
    board.live()
    status, hook = board.call("POST", "/v1/webhooks", minimal(url=receiver.url, name="Invoices to billing",
                                                               reference="billing"))
    assert status == 201
    board.call("GET", f"/v1/webhooks/{hook['id']}")
    board.call("POST", "/v1/webhooks", {"name": "No url"})
    board.call("GET", "/v1/webhooks/whk_unknown")
    board.call("GET", "/v2/webhooks")
    board.call("PUT", "/__mock/scenario", {"name": "unauthorised", "api_key": "ci-client-key"})
    board.call("POST", "/v1/webhooks", minimal(), headers={"X-API-KEY": "ci-client-key"})
    board.call("POST", "/__mock/events", {"type": "INVOICE.CREATED"})
    expect(page.locator(".webhook.boxed")).to_have_count(1)
    board.call("PUT", "/__mock/scenario", {"name": "flaky"})
    expect(page.locator("#active-scenario")).to_have_text("flaky")
    board.call("GET", "/v1/webhooks")
    expect(page.locator("#request-list li")).to_have_count(7)
    page.locator("#request-list li[data-field='url'] button.request-row").click()
    for selector in ("#request-list li", "#bindings li", ".webhook.boxed", "#attempts tbody tr"):
        assert page.locator(selector).first.is_visible(), selector
    shot = tmp_path / "dashboard.png"
    page.screenshot(path=str(shot))
    docs = ROOT / "docs" / "dashboard.png"
    if os.environ.get("MOCKSERVER_DOCS_SCREENSHOT") == "1" or not docs.exists():
        shutil.copyfile(shot, docs)
    board.assert_no_console_errors()
