"""Known secrets sent through every path never appear in answers, the journal, admin routes or logs."""

from __future__ import annotations

import io
import json
import logging
import signal
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from conftest import AUTH, minimal
from mockserver import logs
from mockserver.app import MOCK
from mockserver.journal import REDACTED, SecretSet

SECRETS = {
    "password": "pw-Zq81-secret",
    "api_key": "ak-Zq82-secret",
    "header_key": "hk-Zq83-secret",
    "bearer": "bt-Zq84-secret",
}


def call(url: str, method: str = "GET", body: bytes | None = None, headers: dict | None = None) -> str:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.dumps(dict(resp.headers)) + resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return json.dumps(dict(exc.headers)) + exc.read().decode("utf-8", "replace")
    except (urllib.error.URLError, ConnectionError):
        return ""


def test_secrets_never_leave_the_server():
    proc = subprocess.Popen([sys.executable, "-m", "mockserver", "serve", "--port", "0", "--log-level", "DEBUG"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = proc.stdout.readline().split()[-1]
    key_headers = {"X-API-KEY": SECRETS["header_key"], "Content-Type": "application/json"}
    bearer_headers = {"Authorization": f"Bearer {SECRETS['bearer']}", "Content-Type": "application/json"}
    valid = {"url": "https://example.com/h", "name": "n", "reference": "r",
             "password": SECRETS["password"], "api_key": SECRETS["api_key"]}
    hook = base + "/v1/webhooks"
    seen = []
    try:
        bodies = [
            json.dumps(valid),                                              # success
            json.dumps({**valid, "password": SECRETS["password"] + " !"}),  # INVALID_FIELD on the secret itself
            json.dumps({**valid, "api_key": SECRETS["api_key"] * 20}),      # too long secret
            json.dumps({**valid, "url": "nope"}),                           # other INVALID_FIELD
            json.dumps({k: v for k, v in valid.items() if k != "name"}),    # MISSING_FIELD
            json.dumps(valid)[:-5],                                         # not JSON
            f"password={SECRETS['password']}&api_key={SECRETS['api_key']}",  # form-encoded
            repr(valid),                                                    # single-quoted pseudo-JSON
        ]
        for body in bodies:
            for headers in (key_headers, bearer_headers, {"Content-Type": "application/json"}):
                seen.append(call(hook, "POST", body.encode(), headers))
        seen.append(call(hook, "POST", json.dumps(valid).encode(), {**key_headers, "Content-Type": "text/plain"}))
        # Values the mock has learnt are secrets, sent again where no field name marks them.
        seen.append(call(f"{base}/nowhere?note={SECRETS['password']}&key={SECRETS['api_key']}", "GET", None,
                         {"X-Note": f"{SECRETS['bearer']} {SECRETS['header_key']}"}))
        seen.append(call(base + "/v2/webhooks", "POST", json.dumps(valid).encode(), key_headers))
        seen.append(call(base + "/nowhere", "POST", json.dumps(valid).encode(), bearer_headers))
        for scenario in ("internal-error", "flaky", "revoked-key", "rejected-url", "malformed-response",
                         "connection-reset"):
            seen.append(call(hook, "POST", json.dumps(valid).encode(), {**key_headers, "X-Mock-Scenario": scenario}))
        seen.append(call(hook, "POST", json.dumps(valid).encode(), {**key_headers, "Prefer": "code=403"}))
        seen.append(call(base + "/__mock/scenario", "PUT",
                         json.dumps({"name": "unauthorised", "api_key": SECRETS["header_key"]}).encode()))
        seen.append(call(base + "/__mock/scenario", "PUT",
                         json.dumps({"name": "internal-error", "token": SECRETS["bearer"]}).encode()))
        seen.append(call(hook, "POST", json.dumps(valid).encode(), key_headers))
        seen.append(call(hook, "POST", json.dumps(valid).encode(), bearer_headers))
        for route in ("/__mock/requests", "/__mock/scenario", "/__mock/scenarios", "/__mock/openapi.json"):
            seen.append(call(base + route))
        with urllib.request.urlopen(base + "/__mock/requests") as resp:
            journal = json.loads(resp.read())
    finally:
        proc.send_signal(signal.SIGTERM)
        _, logs = proc.communicate(timeout=15)
    assert len(journal["requests"]) >= 25
    assert "sha256:" in "".join(seen)
    everything = "\n".join(seen) + json.dumps(journal) + logs
    for name, secret in SECRETS.items():
        assert secret not in everything, f"{name} leaked"
    assert "mockserver.access" in logs and " DEBUG " in logs


# ------------------------------------------------------------------ logs


PASSWORD, KEY = "pw-Logged-51", "key-Logged-52"


async def test_known_secrets_never_reach_a_log_record(make_client, caplog):
    client = await make_client()
    stop = logs.scrub_with(client.server.app[MOCK].journal.secrets)  # as the composition root does
    try:
        with caplog.at_level(logging.DEBUG):
            await client.post("/v1/webhooks", json=minimal(password=PASSWORD), headers={"X-API-KEY": KEY})
            await client.get(f"/v1/webhooks/{PASSWORD}", headers=AUTH)
            await client.delete(f"/v1/webhooks/{KEY}", headers=AUTH)
            logging.getLogger("mockserver").warning("a message naming %s", PASSWORD)
    finally:
        stop()
    assert f"/v1/webhooks/{REDACTED}" in caplog.text and "a message naming" in caplog.text
    assert PASSWORD not in caplog.text and KEY not in caplog.text
    assert all(PASSWORD not in r.getMessage() for r in caplog.records)


@pytest.fixture
def restore_logging():
    """``logs.configure`` rewires the root logger for ``serve``; put everything back afterwards."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, logging._srcfile, logging.logThreads, logging.logProcesses,
             logging.logMultiprocessing, logs.ACCESS._direct)
    yield
    handlers, level, logging._srcfile, logging.logThreads, logging.logProcesses, logging.logMultiprocessing, direct = saved
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    logs.ACCESS.write_directly(direct)


def test_the_serve_handler_scrubs_every_logger_tracebacks_and_the_direct_access_line(restore_logging):
    secrets = SecretSet()
    secrets.add(PASSWORD)
    stream = io.StringIO()
    handler = logs.configure("DEBUG", stream)
    stop = logs.scrub_with(secrets)
    try:
        logging.getLogger("a.library").error("bad request line: GET /%s", PASSWORD)  # no filter of its own
        try:
            raise ValueError(f"bad value {PASSWORD}")
        except ValueError:
            logging.getLogger("asyncio").exception("callback failed")
        logs.ACCESS.line(f"GET /v1/webhooks/{PASSWORD} 404 1.0ms reqr_x")
        handler.tick()
    finally:
        stop()
    out = stream.getvalue()
    assert PASSWORD not in out
    assert f"GET /{REDACTED}" in out and f"ValueError: bad value {REDACTED}" in out
    assert f"mockserver.access: GET /v1/webhooks/{REDACTED} 404" in out
