"""Known secrets sent through every path never appear in answers, the journal, admin routes or logs."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.error
import urllib.request

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
        ]
        for body in bodies:
            for headers in (key_headers, bearer_headers, {"Content-Type": "application/json"}):
                seen.append(call(hook, "POST", body.encode(), headers))
        seen.append(call(hook, "POST", json.dumps(valid).encode(), {**key_headers, "Content-Type": "text/plain"}))
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
