"""How a consumer tests its own client code against the mockserver fixture: one test per scenario."""

from __future__ import annotations

import pytest

from .webhook_client import WebhookApiError, WebhookClient


@pytest.fixture
def client(mockserver):
    return WebhookClient(mockserver.url, api_key="test-key", timeout=1.0)


def test_registers_a_webhook(client, mockserver):
    hook = client.register("https://example.com/hook", "Invoices", "invoices")
    assert hook.id.startswith("whk_") and hook.active
    mockserver.assert_called_with(body={"url": "https://example.com/hook", "name": "Invoices"},
                                  headers={"Content-Type": "application/json"}, path="/v1/webhooks")


@pytest.mark.mockserver(scenario="flaky")
def test_retries_through_two_server_errors(client, mockserver):
    client.register("https://example.com/hook", "Invoices", "invoices")
    assert [r["status"] for r in mockserver.requests] == [500, 500, 201]


@pytest.mark.mockserver(scenario="internal-error")
def test_gives_up_after_its_retries(client, mockserver):
    with pytest.raises(WebhookApiError) as caught:
        client.register("https://example.com/hook", "Invoices", "invoices")
    assert caught.value.code == "INTERNAL_ERROR"
    mockserver.assert_called(times=3)


@pytest.mark.mockserver(scenario="unauthorised")
def test_does_not_retry_a_refused_key(client, mockserver):
    with pytest.raises(WebhookApiError, match="UNAUTHORISED"):
        client.register("https://example.com/hook", "Invoices", "invoices")
    mockserver.assert_called(times=1)


@pytest.mark.mockserver(scenario="missing-permission")
def test_reports_a_missing_permission(client):
    with pytest.raises(WebhookApiError) as caught:
        client.register("https://example.com/hook", "Invoices", "invoices")
    assert caught.value.status == 403 and "WEBHOOK.CREATE" in caught.value.message


@pytest.mark.mockserver(scenario="rejected-url")
def test_surfaces_a_rejected_url(client):
    with pytest.raises(WebhookApiError) as caught:
        client.register("http://localhost:9000/hook", "Invoices", "invoices")
    assert (caught.value.status, caught.value.code) == (400, "INVALID_FIELD")


@pytest.mark.mockserver(scenario="bad-request")
def test_surfaces_a_bad_request(client):
    with pytest.raises(WebhookApiError, match="BAD_REQUEST"):
        client.register("https://example.com/hook", "Invoices", "invoices")


def test_only_the_revoked_key_is_refused(mockserver):
    mockserver.use("revoked-key")
    with pytest.raises(WebhookApiError, match="revoked"):
        WebhookClient(mockserver.url, api_key="revoked").register("https://example.com/h", "n", "r")
    WebhookClient(mockserver.url, api_key="fresh").register("https://example.com/h", "n", "r")


@pytest.mark.mockserver(scenario="slow")
def test_times_out_on_a_slow_api(mockserver):
    slow_client = WebhookClient(mockserver.url, api_key="k", retries=0, timeout=0.2)
    with pytest.raises(WebhookApiError, match="NETWORK"):
        slow_client.register("https://example.com/hook", "Invoices", "invoices")


@pytest.mark.mockserver(scenario="connection-reset")
def test_reports_a_dropped_connection(client, mockserver):
    with pytest.raises(WebhookApiError, match="NETWORK"):
        client.register("https://example.com/hook", "Invoices", "invoices")
    mockserver.assert_called(times=3)


@pytest.mark.mockserver(scenario="malformed-response")
def test_survives_an_unparseable_error_body(client):
    with pytest.raises(WebhookApiError, match="UNPARSEABLE"):
        client.register("https://example.com/hook", "Invoices", "invoices")
