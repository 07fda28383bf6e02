"""The x-mock deliveries block is checked at load: a broken part is one line naming the file,
the line and what is allowed, from ``check`` as from ``serve``, before anything listens.

The block under test is the bundled overlay's own, moved into a small document, so each case
breaks one line of it and expects that line.
"""

from __future__ import annotations

import io
import re
import textwrap
from pathlib import Path

import pytest

from conftest import SPEC
from mockserver.cli import run

OVERLAY = SPEC / "overlays" / "solvimon-webhooks.yaml"
DOCUMENT = """\
openapi: 3.1.0
info: {title: Hooks, version: '1'}
paths:
  /hooks:
    get:
      responses:
        '200': {description: ok}
"""


def cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(list(args), out, err)
    return code, out.getvalue(), err.getvalue()


def bundled_block() -> str:
    """The deliveries block of the bundled overlay, as written there (one level of x-mock down)."""
    text = OVERLAY.read_text()
    found = re.search(r"^( +)deliveries:\n((?:\1 .*\n)+)", text, re.M)
    assert found, "the bundled overlay has no deliveries block"
    return textwrap.dedent(found.group(2))


def document(tmp_path: Path, block: str) -> Path:
    """A small document with ``block`` as its x-mock deliveries."""
    path = tmp_path / "api.yaml"
    path.write_text(DOCUMENT + "x-mock:\n  deliveries:\n" + textwrap.indent(block, "    "))
    return path


def line_with(path: Path, text: str) -> int:
    lines = path.read_text().splitlines()
    found = [i for i, line in enumerate(lines, 1) if text in line]
    assert len(found) == 1, (text, found)
    return found[0]


def test_the_bundled_block_loads_in_any_document(tmp_path):
    code, out, err = cli("check", "--openapi", str(document(tmp_path, bundled_block())))
    assert code == 0, err
    assert out.startswith("ok: ")


CASES = [
    ("attempts: 3", "attempts: 0", "attempts: 0",
     "retries.attempts: must be a whole number of at least 1, not 0"),
    ("firstSeconds: 1", "firstSeconds: -1", "firstSeconds: -1",
     "retries.backoff.firstSeconds: must be a number above 0, not -1"),
    ("signed: '{timestamp}.{body}'", "signed: '{timestamp}.'", "signed:",
     "signing.signed: must be a string with {body} once, not '{timestamp}.'"),
    ("entry: v1={signature}", "entry: v1=", "entry:",
     "signing.entry: must be a string with {signature} once, not 'v1='"),
    ("encoding: hex", "encoding: base32", "encoding:",
     "signing.encoding: must be one of hex, base64, not 'base32'"),
    ("timestampHeader: X-Webhook-Timestamp", "timestampHeader: X Webhook Timestamp", "timestampHeader:",
     "signing.timestampHeader: must be an HTTP header name, not 'X Webhook Timestamp'"),
    ("signatureHeader: X-Webhook-Signature", "signatureHeader: x-webhook-timestamp", "signatureHeader:",
     "signing.signatureHeader: must differ from timestampHeader"),
    ("PASSWORD: {scheme: basic, username: username, password: password}", "PASSWORD: {scheme: digest}",
     "PASSWORD:", "authentication.kinds.PASSWORD.scheme: scheme must be one of basic, header, none, not 'digest'"),
    ("API_KEY: {scheme: header, name: api_header_field, value: api_key}", "API_KEY: {scheme: header, name: k}",
     "API_KEY:", "authentication.kinds.API_KEY: needs value"),
    ("result: {successful: successful, message: message}", "result: {successful: ok, message: m, reason: r}",
     "result:", "result.reason: unknown key 'reason'; allowed here: successful, message"),
    ("createdAt: created_at", "created: created_at", "created:",
     "event.envelope.created: unknown role 'created'; allowed here: createdAt, type, requestId, environment, data"),
    ("environment: environment", "environment: type", "environment: type",
     "event.envelope.environment: environment and type both name 'type'"),
    ("id: {prefix: evt_, length: 20}", "id: {prefix: evt_, length: twenty}", "length: twenty",
     "event.id.length: must be a whole number of at least 1, not 'twenty'"),
    ("collection: webhooks", "collection: ''", "collection:", "collection: must be a non-empty name, not ''"),
]


@pytest.mark.parametrize("old, new, at, message", CASES, ids=[c[3].split(":")[0] for c in CASES])
def test_a_broken_part_is_one_line_at_its_place(tmp_path, old, new, at, message):
    block = bundled_block()
    assert block.count(old) == 1, old
    path = document(tmp_path, block.replace(old, new))
    code, out, err = cli("check", "--openapi", str(path))
    assert code == 2 and out == ""
    assert err == f"mockserver: error: {path}:{line_with(path, at)}: at x-mock.deliveries.{message}\n"


def test_a_missing_part_is_named_with_its_block(tmp_path):
    block = bundled_block()
    path = document(tmp_path, re.sub(r"^  signatureHeader: .*\n", "", block, flags=re.M))
    code, _, err = cli("check", "--openapi", str(path))
    assert code == 2
    # A block's place is its first line: the key that names it is one line up.
    line = line_with(path, "timestampHeader:")
    assert err == f"mockserver: error: {path}:{line}: at x-mock.deliveries.signing: needs signatureHeader\n"


def test_a_block_that_is_not_an_object_stops_serve_before_it_listens(tmp_path):
    path = tmp_path / "api.yaml"
    path.write_text(DOCUMENT + "x-mock:\n  deliveries: [webhooks]\n")
    code, _, err = cli("check", "--openapi", str(path))
    assert code == 2
    assert err == (f"mockserver: error: {path}:{line_with(path, 'deliveries:')}: "
                   f"at x-mock.deliveries: must be an object, not ['webhooks']\n")
    code, out, serve_err = cli("serve", "--port", "0", "--openapi", str(path))
    assert code == 2 and serve_err == err and "listening" not in out


def test_a_broken_block_in_an_overlay_is_one_line_that_says_where_in_the_block(tmp_path):
    overlay = tmp_path / "webhooks.yaml"
    overlay.write_text(OVERLAY.read_text().replace("attempts: 3", "attempts: 0"))
    code, _, err = cli("check", "--overlay", "solvimon", "--overlay", str(overlay))
    assert code == 2
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("mockserver: error: "), err
    assert lines[0].endswith(": at x-mock.deliveries.retries.attempts: must be a whole number of at least 1, not 0")
