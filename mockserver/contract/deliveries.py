"""How a contract's resources deliver events (x-mock ``deliveries``), compiled and checked at load.

The delivery code acts on what fields mean (it posts to a URL, signs with a secret, fills in a
penalty box) but names none of them: it speaks of roles, and this block maps every role to the
contract's own name. It also says what an event looks like, how often a delivery is tried and
how a delivery is signed. Everything is checked here, so a broken block stops start-up with one
line naming where it is, instead of failing on the first delivery.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable, Mapping, Sequence

from ..errors import LoadError, format_path

Error = Callable[[Sequence[Any], str], LoadError]

# An HTTP header name (an RFC 9110 token).
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")

AUTH_SCHEMES = {"basic": ("username", "password"), "header": ("name", "value"), "none": ()}
ENVELOPE_ROLES = ("createdAt", "type", "requestId", "environment", "data")
PENALTY_ROLES = ("retryCount", "retryAt", "cause", "payload")
# Digests hmac accepts everywhere (the shake_ ones need a length, so they are not among them).
ALGORITHMS = tuple(sorted(a for a in hashlib.algorithms_guaranteed if not a.startswith("shake_")))
ENCODINGS = ("hex", "base64")


@dataclass(frozen=True, slots=True)
class Token:
    """A generated identifier: ``prefix`` and ``length`` letters and digits."""

    prefix: str
    length: int


@dataclass(frozen=True, slots=True)
class Fields:
    """The receiving resource's fields the deliveries read: where to post, whether and what to send."""

    id: str
    url: str
    active: str
    included: str  # the event types it selects (none: every one)
    excluded: str  # the event types it never gets


@dataclass(frozen=True, slots=True)
class AuthKind:
    """How one value of the authentication field authenticates a delivery.

    ``basic``: HTTP Basic from the field ``username`` and the credential ``password``;
    ``header``: the header the field ``name`` names, carrying the credential ``value``;
    ``none``: nothing. Credentials are the write-only fields kept apart from the stored body.
    """

    scheme: str
    username: str | None = None
    password: str | None = None
    name: str | None = None
    value: str | None = None


@dataclass(frozen=True, slots=True)
class Authentication:
    field: str
    kinds: Mapping[str, AuthKind]

    def credentials(self) -> tuple[str, ...]:
        """Every credential field some kind sends (what a connection test takes from its body)."""
        found = (kind.password or kind.value for kind in self.kinds.values())
        return tuple(dict.fromkeys(name for name in found if name))


@dataclass(frozen=True, slots=True)
class Secrets:
    """The signing secret and what a roll keeps of the one before; ``new`` makes a secret when
    the contract's schemas give the secret field no generator."""

    current: str
    previous: str
    protocol: str
    previous_protocol: str
    rolled_at: str
    new: Token


@dataclass(frozen=True, slots=True)
class Catalogue:
    """Where the event types are listed: the answer of every ``data`` behaviour holds ``groups``,
    each naming its object ``kind`` and its ``events``."""

    groups: str
    kind: str
    events: str


@dataclass(frozen=True, slots=True)
class Event:
    catalogue: Catalogue
    id: Token
    envelope: tuple[tuple[str, str], ...]  # (role, field name), in the order the body has them


@dataclass(frozen=True, slots=True)
class Retries:
    attempts: int  # before the penalty box
    first_s: float
    factor: float

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` (from 1): exponential backoff."""
        return self.first_s * self.factor ** (attempt - 1)


@dataclass(frozen=True, slots=True)
class PenaltyBox:
    since: str  # the field answering when the resource entered the box
    data: str  # the field answering what is held
    fields: tuple[tuple[str, str], ...]  # (role, field name) of ``data``


@dataclass(frozen=True, slots=True)
class Result:
    """The answer of a connection test, a test delivery and a release."""

    successful: str
    message: str


@dataclass(frozen=True, slots=True)
class SigningScheme:
    """How a delivery is signed.

    ``signed`` is what the HMAC covers, with ``{timestamp}`` and ``{body}`` (the raw body);
    ``entry`` writes one signature (``{signature}``, in ``encoding``); one entry per secret,
    joined by ``separator``.
    """

    timestamp_header: str
    signature_header: str
    signed: str
    algorithm: str
    encoding: str
    entry: str
    separator: str


@dataclass(frozen=True, slots=True)
class DeliverySpec:
    """Everything the deliveries know of the contract, by role."""

    collection: str
    fields: Fields
    authentication: Authentication
    secrets: Secrets
    event: Event
    retries: Retries
    penalty_box: PenaltyBox
    result: Result
    signing: SigningScheme


def compile_deliveries(block: Any, error: Error) -> DeliverySpec | None:
    """The deliveries block of the document's x-mock, or None when the contract delivers nothing."""
    if block is None:
        return None
    read = _Reader(error)
    top = read.object(block, [], ("collection", "fields", "authentication", "secrets", "event", "retries",
                                  "penaltyBox", "result", "signing"))
    return DeliverySpec(
        collection=read.name(top["collection"], ["collection"]),
        fields=Fields(**read.roles(top["fields"], ["fields"], {"id": "id", "url": "url", "active": "active",
                                                               "includedEvents": "included",
                                                               "excludedEvents": "excluded"})),
        authentication=_authentication(read, top["authentication"], ["authentication"]),
        secrets=_secrets(read, top["secrets"], ["secrets"]),
        event=_event(read, top["event"], ["event"]),
        retries=_retries(read, top["retries"], ["retries"]),
        penalty_box=_penalty_box(read, top["penaltyBox"], ["penaltyBox"]),
        result=Result(**read.roles(top["result"], ["result"], {"successful": "successful", "message": "message"})),
        signing=_signing(read, top["signing"], ["signing"]),
    )


def _authentication(read: _Reader, node: Any, where: list[Any]) -> Authentication:
    block = read.object(node, where, ("field", "kinds"))
    kinds = read.object(block["kinds"], [*where, "kinds"], ())
    if not kinds:
        raise read.fail([*where, "kinds"], "needs at least one kind, such as {NONE: {scheme: none}}")
    return Authentication(field=read.name(block["field"], [*where, "field"]),
                          kinds=MappingProxyType({str(value): _auth_kind(read, kind, [*where, "kinds", value])
                                                  for value, kind in kinds.items()}))


def _auth_kind(read: _Reader, node: Any, where: list[Any]) -> AuthKind:
    scheme = read.object(node, where, ()).get("scheme")
    if scheme not in AUTH_SCHEMES:
        raise read.fail([*where, "scheme"], f"scheme must be one of {', '.join(AUTH_SCHEMES)}, not {scheme!r}")
    block = read.object(node, where, ("scheme", *AUTH_SCHEMES[scheme]))
    return AuthKind(scheme, **{key: read.name(block[key], [*where, key]) for key in AUTH_SCHEMES[scheme]})


def _secrets(read: _Reader, node: Any, where: list[Any]) -> Secrets:
    block = read.object(node, where, ("current", "previous", "protocol", "previousProtocol", "rolledAt", "new"))
    names = read.roles({k: v for k, v in block.items() if k != "new"}, where,
                       {"current": "current", "previous": "previous", "protocol": "protocol",
                        "previousProtocol": "previous_protocol", "rolledAt": "rolled_at"})
    return Secrets(**names, new=_token(read, block["new"], [*where, "new"]))


def _event(read: _Reader, node: Any, where: list[Any]) -> Event:
    block = read.object(node, where, ("catalogue", "id", "envelope"))
    catalogue = read.roles(block["catalogue"], [*where, "catalogue"],
                           {"groups": "groups", "kind": "kind", "events": "events"})
    return Event(catalogue=Catalogue(**catalogue), id=_token(read, block["id"], [*where, "id"]),
                 envelope=read.ordered(block["envelope"], [*where, "envelope"], ENVELOPE_ROLES))


def _retries(read: _Reader, node: Any, where: list[Any]) -> Retries:
    block = read.object(node, where, ("attempts", "backoff"))
    backoff = read.object(block["backoff"], [*where, "backoff"], ("firstSeconds", "factor"))
    return Retries(attempts=read.count(block["attempts"], [*where, "attempts"]),
                   first_s=read.positive(backoff["firstSeconds"], [*where, "backoff", "firstSeconds"]),
                   factor=read.positive(backoff["factor"], [*where, "backoff", "factor"]))


def _penalty_box(read: _Reader, node: Any, where: list[Any]) -> PenaltyBox:
    block = read.object(node, where, ("since", "data", "dataFields"))
    return PenaltyBox(since=read.name(block["since"], [*where, "since"]),
                      data=read.name(block["data"], [*where, "data"]),
                      fields=read.ordered(block["dataFields"], [*where, "dataFields"], PENALTY_ROLES))


def _signing(read: _Reader, node: Any, where: list[Any]) -> SigningScheme:
    block = read.object(node, where, ("timestampHeader", "signatureHeader", "signed", "algorithm", "encoding",
                                      "entry", "separator"))
    for key in ("timestampHeader", "signatureHeader"):
        if not isinstance(block[key], str) or not HEADER_NAME.fullmatch(block[key]):
            raise read.fail([*where, key], f"must be an HTTP header name, not {block[key]!r}")
    if block["timestampHeader"].lower() == block["signatureHeader"].lower():
        raise read.fail([*where, "signatureHeader"], "must differ from timestampHeader")
    read.template(block["signed"], [*where, "signed"], "{body}")
    read.template(block["entry"], [*where, "entry"], "{signature}")
    for key, allowed in (("algorithm", ALGORITHMS), ("encoding", ENCODINGS)):
        if block[key] not in allowed:
            raise read.fail([*where, key], f"must be one of {', '.join(allowed)}, not {block[key]!r}")
    separator = block["separator"]
    if not isinstance(separator, str) or not separator or separator in block["entry"]:
        raise read.fail([*where, "separator"], f"must be a non-empty string that no entry contains, not {separator!r}")
    return SigningScheme(block["timestampHeader"], block["signatureHeader"], block["signed"], block["algorithm"],
                         block["encoding"], block["entry"], separator)


def _token(read: _Reader, node: Any, where: list[Any]) -> Token:
    block = read.object(node, where, ("prefix", "length"))
    if not isinstance(block["prefix"], str):
        raise read.fail([*where, "prefix"], f"must be a string, not {block['prefix']!r}")
    return Token(block["prefix"], read.count(block["length"], [*where, "length"]))


class _Reader:
    """Typed reads of the block; every problem is one error naming where in the block it is."""

    def __init__(self, error: Error) -> None:
        self.error = error

    def fail(self, where: Sequence[Any], message: str) -> LoadError:
        return self.error(where, f"at {format_path(['x-mock', 'deliveries', *where])}: {message}")

    def object(self, node: Any, where: list[Any], keys: Sequence[str]) -> Mapping[str, Any]:
        """A mapping with exactly ``keys`` (any keys when none are given)."""
        if not isinstance(node, Mapping):
            raise self.fail(where, f"must be an object, not {node!r}")
        if keys:
            unknown = [k for k in node if k not in keys]
            if unknown:
                raise self.fail([*where, unknown[0]], f"unknown key {unknown[0]!r}; allowed here: {', '.join(keys)}")
            missing = [k for k in keys if k not in node]
            if missing:
                raise self.fail(where, f"needs {', '.join(missing)}")
        return node

    def name(self, node: Any, where: list[Any]) -> str:
        if not isinstance(node, str) or not node:
            raise self.fail(where, f"must be a non-empty name, not {node!r}")
        return node

    def count(self, node: Any, where: list[Any]) -> int:
        if isinstance(node, bool) or not isinstance(node, int) or node < 1:
            raise self.fail(where, f"must be a whole number of at least 1, not {node!r}")
        return node

    def positive(self, node: Any, where: list[Any]) -> float:
        if isinstance(node, bool) or not isinstance(node, (int, float)) or node <= 0:
            raise self.fail(where, f"must be a number above 0, not {node!r}")
        return float(node)

    def roles(self, node: Any, where: list[Any], roles: Mapping[str, str]) -> dict[str, str]:
        """Every role of ``roles`` (block key -> attribute) mapped to a distinct field name."""
        block = self.object(node, where, tuple(roles))
        self._distinct(block, where)
        return {attribute: self.name(block[key], [*where, key]) for key, attribute in roles.items()}

    def ordered(self, node: Any, where: list[Any], roles: Sequence[str]) -> tuple[tuple[str, str], ...]:
        """Some of ``roles``, each mapped to a distinct field name, in the order written."""
        block = self.object(node, where, ())
        unknown = [k for k in block if k not in roles]
        if unknown:
            raise self.fail([*where, unknown[0]], f"unknown role {unknown[0]!r}; allowed here: {', '.join(roles)}")
        self._distinct(block, where)
        return tuple((role, self.name(name, [*where, role])) for role, name in block.items())

    def template(self, node: Any, where: list[Any], placeholder: str) -> None:
        if not isinstance(node, str) or node.count(placeholder) != 1:
            raise self.fail(where, f"must be a string with {placeholder} once, not {node!r}")

    def _distinct(self, block: Mapping[str, Any], where: list[Any]) -> None:
        seen: dict[str, str] = {}
        for key, name in block.items():
            if isinstance(name, str):
                if name in seen:
                    raise self.fail([*where, key], f"{key} and {seen[name]} both name {name!r}")
                seen[name] = key
