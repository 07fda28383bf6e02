"""Webhook signatures: how mockserver signs deliveries, and a helper to verify them.

The scheme is the contract's, read from ``x-mock.deliveries.signing`` in ``spec/`` (see
:class:`~mockserver.contract.deliveries.SigningScheme`): which headers carry the timestamp and
the signatures, what the HMAC covers, its digest and encoding, how one signature entry is
written. While a secret is being rolled, a second entry is signed with the previous secret, so
a receiver that still knows only one of them accepts.

Receivers can test their own verification against :func:`verify`; without a scheme it checks
the bundled contract's, read from the bundled overlay on first use.
"""

from __future__ import annotations

import base64
import hmac
import time
from functools import cache
from typing import TYPE_CHECKING, Iterable, Mapping

if TYPE_CHECKING:  # the contract package is imported only when a scheme must be read
    from .contract.deliveries import SigningScheme


def sign(scheme: SigningScheme, secret: str, timestamp: int, body: bytes) -> str:
    """One signature entry of ``body`` at ``timestamp`` with ``secret``."""
    before, after = (part.replace("{timestamp}", str(timestamp)).encode("utf-8")
                     for part in scheme.signed.split("{body}"))
    mac = hmac.new(secret.encode("utf-8"), before + body + after, scheme.algorithm).digest()
    signature = mac.hex() if scheme.encoding == "hex" else base64.b64encode(mac).decode("ascii")
    return scheme.entry.replace("{signature}", signature)


def signature_headers(scheme: SigningScheme, secrets: Iterable[str], body: bytes,
                      timestamp: int | None = None) -> dict[str, str]:
    """The headers of a signed delivery; one entry per secret, current first."""
    stamp = int(time.time()) if timestamp is None else timestamp
    signatures = [sign(scheme, secret, stamp, body) for secret in secrets if secret]
    headers = {scheme.timestamp_header: str(stamp)}
    if signatures:  # a connection test has no secret yet: nothing to sign with
        headers[scheme.signature_header] = scheme.separator.join(signatures)
    return headers


def verify(secret: str, body: bytes, headers: Mapping[str, str], tolerance_s: int = 300,
           now: float | None = None, scheme: SigningScheme | None = None) -> bool:
    """True when ``headers`` carry a fresh, valid signature of ``body`` made with ``secret``.

    Header names are matched case-insensitively; the timestamp must be within
    ``tolerance_s`` seconds of now, which stops replays of old deliveries. ``scheme``:
    the bundled contract's unless given (a contract's is ``contract.deliveries.signing``).
    """
    scheme = scheme or bundled_scheme()
    lowered = {k.lower(): v for k, v in headers.items()}
    raw_stamp = lowered.get(scheme.timestamp_header.lower(), "")
    signatures = lowered.get(scheme.signature_header.lower(), "")
    if not raw_stamp.isdigit() or not signatures:
        return False
    stamp = int(raw_stamp)
    if abs((time.time() if now is None else now) - stamp) > tolerance_s:
        return False
    expected = sign(scheme, secret, stamp, body).encode("utf-8")
    return any(hmac.compare_digest(expected, entry.strip().encode("utf-8"))
               for entry in signatures.split(scheme.separator))


@cache
def bundled_scheme() -> SigningScheme:
    """The signing scheme of the bundled contract (loaded once, on first use)."""
    from .contract.build import load_contract

    deliveries = load_contract().deliveries
    if deliveries is None:
        raise LookupError("the bundled contract delivers nothing, so it has no signing scheme")
    return deliveries.signing
