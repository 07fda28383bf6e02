"""Webhook signatures: how mockserver signs deliveries, and a helper to verify them.

A delivery carries ``X-Webhook-Timestamp: <unix seconds>`` and
``X-Webhook-Signature: v1=<hex HMAC-SHA256 of "<timestamp>.<raw body>">`` keyed with the
webhook's secret. While a secret is being rolled, a second ``v1=`` entry, comma-separated,
is signed with the previous secret, so a receiver that still knows only one of them accepts.

Receivers can test their own verification against :func:`verify`.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Iterable, Mapping

TIMESTAMP_HEADER = "X-Webhook-Timestamp"
SIGNATURE_HEADER = "X-Webhook-Signature"
SCHEME = "v1"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """``v1=<hex>`` for one secret."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + body, hashlib.sha256)
    return f"{SCHEME}={mac.hexdigest()}"


def signature_headers(secrets: Iterable[str], body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The headers of a signed delivery; one ``v1=`` entry per secret, current first."""
    stamp = int(time.time()) if timestamp is None else timestamp
    signatures = [sign(secret, stamp, body) for secret in secrets if secret]
    headers = {TIMESTAMP_HEADER: str(stamp)}
    if signatures:  # a connection test has no secret yet: nothing to sign with
        headers[SIGNATURE_HEADER] = ",".join(signatures)
    return headers


def verify(secret: str, body: bytes, headers: Mapping[str, str], tolerance_s: int = 300,
           now: float | None = None) -> bool:
    """True when ``headers`` carry a fresh, valid signature of ``body`` made with ``secret``.

    Header names are matched case-insensitively; the timestamp must be within
    ``tolerance_s`` seconds of now, which stops replays of old deliveries.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    raw_stamp = lowered.get(TIMESTAMP_HEADER.lower(), "")
    signatures = lowered.get(SIGNATURE_HEADER.lower(), "")
    if not raw_stamp.isdigit() or not signatures:
        return False
    stamp = int(raw_stamp)
    if abs((time.time() if now is None else now) - stamp) > tolerance_s:
        return False
    expected = sign(secret, stamp, body)
    return any(hmac.compare_digest(expected, entry.strip()) for entry in signatures.split(","))
