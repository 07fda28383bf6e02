"""A tiny webhook-registration client, as a consumer of the Solvimon API would write it.

It is the code under test in ``test_webhook_client.py``: the example of how to test
your own client against the ``mockserver`` fixture.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass


@dataclass(frozen=True)
class Registered:
    id: str
    secret_key: str
    url: str
    active: bool


class WebhookApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


class WebhookClient:
    def __init__(self, base_url: str, api_key: str, retries: int = 2, timeout: float = 5.0) -> None:
        self.base_url, self.api_key, self.retries, self.timeout = base_url, api_key, retries, timeout

    def register(self, url: str, name: str, reference: str) -> Registered:
        """Create a webhook; retries 5xx answers and dropped connections, raises on 4xx."""
        payload = json.dumps({"url": url, "name": name, "reference": reference}).encode()
        for attempt in range(self.retries + 1):
            request = urllib.request.Request(
                f"{self.base_url}/v1/webhooks", data=payload, method="POST",
                headers={"Content-Type": "application/json", "X-API-KEY": self.api_key})
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                    body = json.loads(resp.read())
                    return Registered(body["id"], body["secret_key"], body["url"], body["active"])
            except urllib.error.HTTPError as exc:
                error = _api_error(exc)
                if exc.code < 500 or attempt == self.retries:
                    raise error from None
            except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
                if attempt == self.retries:
                    raise WebhookApiError(0, "NETWORK", str(exc)) from None
            time.sleep(0.01 * 2 ** attempt)
        raise AssertionError("unreachable")


def _api_error(exc: urllib.error.HTTPError) -> WebhookApiError:
    try:
        body = json.loads(exc.read())
        return WebhookApiError(exc.code, body.get("code", "UNKNOWN"), body.get("message", ""))
    except ValueError:
        return WebhookApiError(exc.code, "UNPARSEABLE", "the error body was not JSON")
