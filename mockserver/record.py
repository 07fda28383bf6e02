"""Recording: what an upstream answered, written as a scenario file that ``mockserver serve`` replays.

``mockserver proxy --record DIR`` hands every answer to a :class:`Recorder`, which keeps one
rule per distinct (operation, status, request shape) and writes them to ``DIR/NAME.yaml``:

* The match is the request's method, path and query as sent and its JSON body as a subset,
  without the write-only fields; for each credential the contract names, whether one was sent
  (``{regex: ".+"}``), never which. A body that is not a JSON object is matched by its
  Content-Type alone.
* The answer is the status and the JSON body. Every value the contract marks secret
  (``x-mock-secret: true``, ``format: password`` or ``writeOnly`` on the property, or a
  signing secret its deliveries name) is replaced by a generated value of the same form, the
  same stand-in for the same secret throughout a recording; ids and everything else stay as
  answered, so a recorded create and a recorded get still name the same resource. Properties
  the contract does not name are left out: the mock never answers them.
* An answer that breaks the contract is recorded all the same, with its violations as comments
  above its rule; where the rule itself breaks the contract (a status the operation does not
  list, a value its schema refuses), ``mockserver check`` reports it with the file and line.

Rules are ordered so that the first that matches is the right one: successes first (the mock
gives a scripted success only to a valid request, so a success never hides an error), then
errors; among those, the more a rule matches on the earlier it comes, else in the order seen.
Known secret values (the journal's) are scrubbed from every string written.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import logging
import os
import re
import string
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import yaml

from . import jsoncodec
from .contract import Contract, Operation, Validator, compile_validator
from .errors import format_path
from .generation import GenerationError, Generator, compile_maker
from .journal import SecretSet
from .scenarios import Match, Respond, ScriptChecker

if TYPE_CHECKING:
    from .engine import MockRequest
    from .proxy import Finding

log = logging.getLogger("mockserver.record")

# What marks an answer's property as a secret, besides writeOnly and format: password.
SECRET_MARK = "x-mock-secret"
SCENARIO_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
SENT = {"regex": ".+"}  # a credential was sent: the rule says so, never which one
_DATA_KEYWORDS = frozenset({"const", "enum", "default", "examples", "example", "x-faker"})
_PREFIX = re.compile(r"[A-Za-z]{1,16}_")
_HEX = frozenset("0123456789abcdef")
_UPPER_HEX = frozenset("0123456789ABCDEF")
_SKIP = object()  # a part of a body that a match cannot say


class RecordError(ValueError):
    """The recording cannot be written where it was asked for; ``str()`` says why."""


@dataclass
class _Rule:
    name: str
    text: str  # the rule as YAML, its notes as comments above it
    success: bool
    leaves: int  # how many things it matches on
    seen: int


def answer_secrets(contract: Contract) -> dict[str, Mapping[str, Any]]:
    """Answer properties the contract marks secret, by name, with their schemas."""
    found: dict[str, Mapping[str, Any]] = {}
    seen: set[int] = set()

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
            return
        if not isinstance(node, dict) or id(node) in seen:
            return
        seen.add(id(node))
        props = node.get("properties")
        if isinstance(props, dict):
            for name, sub in props.items():
                if isinstance(sub, dict) and _marked_secret(sub):
                    found.setdefault(str(name), sub)
        for key, value in node.items():
            if key not in _DATA_KEYWORDS:
                walk(value)

    for op in contract.operations:
        for response in op.responses.values():
            walk(response.schema)
    deliveries = contract.deliveries
    if deliveries is not None:  # the fields the contract signs deliveries with hold secrets, whatever their schema says
        for name in (deliveries.secrets.current, deliveries.secrets.previous):
            found.setdefault(name, _property_schema(contract, name))
    return found


def _marked_secret(schema: Mapping[str, Any]) -> bool:
    return schema.get(SECRET_MARK) is True or schema.get("format") == "password" or schema.get("writeOnly") is True


def _property_schema(contract: Contract, name: str) -> Mapping[str, Any]:
    for op in contract.operations:
        for response in op.responses.values():
            props = response.schema.get("properties")
            if isinstance(props, dict) and isinstance(props.get(name), dict):
                return props[name]
    return {}


class Recorder:
    """The rules recorded so far, and the file they are written to."""

    def __init__(self, contract: Contract, directory: Path, name: str = "recorded", *,
                 secrets: SecretSet | None = None, seed: int | None = None, source: str = "the upstream") -> None:
        if not SCENARIO_NAME.match(name):
            raise RecordError(f"--record-name {name!r} is not a scenario name: letters, digits, '_', '.' and '-', "
                              f"starting with a letter or digit")
        directory = Path(directory)
        self.path = directory / f"{name}.yaml"
        if directory.exists() and not directory.is_dir():
            raise RecordError(f"--record {directory}: not a directory")
        if self.path.exists():
            raise RecordError(f"{self.path} already exists; record into another directory or give another "
                              f"--record-name")
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RecordError(f"--record {directory}: cannot create it: {exc.strerror or exc}") from None
        self.name = name
        self.source = source
        self.secrets = secrets if secrets is not None else SecretSet()
        self.generator = Generator(seed)
        self.checker = ScriptChecker(contract)
        self.write_only = contract.write_only_fields()
        self.secret_fields = answer_secrets(contract)
        self._validators: dict[str, Validator | None] = {}
        self._stand_ins: dict[str, str] = {}  # sha256 of a secret -> what is written instead
        self.credential_headers: dict[str, str] = {}  # lower-case name -> as the contract writes it
        self.credential_query: set[str] = set()
        for op in contract.operations:
            for alternative in op.security:
                for scheme in (alternative, *alternative.also):
                    if scheme.kind != "apiKey":  # bearer, basic and other HTTP schemes
                        self.credential_headers["authorization"] = "Authorization"
                    elif scheme.location == "header":
                        self.credential_headers[scheme.header] = scheme.name
                    elif scheme.location == "query":
                        self.credential_query.add(scheme.name)
                    elif scheme.location == "cookie":
                        self.credential_headers["cookie"] = "Cookie"
        self.rules: dict[str, _Rule] = {}
        self._names: dict[str, int] = {}
        self._lock = asyncio.Lock()
        self._dirty = True  # a recording with no rule is written too, so that it can be seen

    # -- adding

    def add(self, op: Operation, req: MockRequest, status: int, parsed: bool, value: Any,
            findings: Sequence[Finding] = ()) -> bool:
        """Record one answer; True when it made a new rule (the file needs writing)."""
        match = self._match(req)
        key = jsoncodec.dumps([op.operation_id, status, match], sort_keys=True).decode()
        if key in self.rules:
            return False
        respond, notes = self._respond(op, status, parsed, value)
        if findings:
            notes = ["the upstream's answer breaks the contract:",
                     *(f"  {f.location} {f.field or '-'}: {f.message}" for f in findings), *notes]
        where = Match(method=match["method"], path=match["path"])
        refused = self.checker.problem(Respond(status=status, body=respond.get("body")), where)
        declared = op.responses.get(status)
        if (refused is not None and "body" in respond and declared is not None
                and declared.validator.is_valid(respond["body"])
                and self.checker.problem(Respond(status=status), where) is None):
            # Valid for its own operation, refused all the same: the path also fits the template of
            # another operation (/things/{id} beside /things/actions), which the load-time check holds
            # it to too. A body there would make the whole file refused.
            del respond["body"]
            notes.append(f"the body is not recorded: {match['path']} also fits the path of another operation, "
                         f"whose schema mockserver check holds it to; a replay answers the contract's body for "
                         f"status {status}")
            refused = None
        if refused is not None:
            where, why = refused
            notes.append(f"mockserver check refuses this rule at {format_path(['respond', *where])}: {why}")
        base = f"{op.operation_id} {status}"
        count = self._names.get(base, 0) + 1
        rule = {"name": base if count == 1 else f"{base} #{count}", "match": match, "respond": respond}
        try:
            text = yaml.safe_dump([rule], sort_keys=False, allow_unicode=True, default_flow_style=False, width=100)
        except (yaml.YAMLError, UnicodeError) as exc:  # a value YAML cannot write: skip the rule, keep recording
            log.warning("not recorded: %s %s answered %d: %s", req.method, self._scrub(req.path), status, exc)
            return False
        comments = "".join(f"# {_one_line(self._scrub(note))}\n" for note in notes)
        self._names[base] = count
        self.rules[key] = _Rule(rule["name"], comments + text, 200 <= status < 300, _leaves(match), len(self.rules))
        self._dirty = True
        return True

    def _match(self, req: MockRequest) -> dict[str, Any]:
        scrub = self._scrub
        match: dict[str, Any] = {"method": req.method, "path": scrub(req.path)}
        query = {scrub(k): scrub(v) for k, v in req.query.items() if k not in self.credential_query}
        if query:
            match["query"] = query
        headers: dict[str, Any] = {shown: dict(SENT) for low, shown in self.credential_headers.items()
                                   if req.headers.get(low, "").strip()}
        if req.body:
            ok, body = req.json()
            shaped = self._for_match(body) if ok and isinstance(body, dict) else _SKIP
            if shaped is not _SKIP:
                match["body"] = shaped
            elif req.headers.get("content-type"):
                headers["Content-Type"] = scrub(req.headers["content-type"])
        if headers:
            match["headers"] = headers
        return match

    def _for_match(self, value: Any) -> Any:
        """A body as a match: without write-only fields; what a match cannot say is _SKIP."""
        if isinstance(value, dict):
            if set(value) == {"regex"}:  # would be read as a pattern
                return _SKIP
            out = {}
            for key, item in value.items():
                if key in self.write_only:
                    continue
                shaped = self._for_match(item)
                if shaped is not _SKIP:
                    out[self._scrub(key)] = shaped
            return out
        if isinstance(value, list):  # matched element by element: one that cannot be said spoils the array
            items = [self._for_match(item) for item in value]
            return _SKIP if any(item is _SKIP for item in items) else items
        if isinstance(value, str):
            return self._scrub(value)
        return value

    def _respond(self, op: Operation, status: int, parsed: bool, value: Any) -> tuple[dict[str, Any], list[str]]:
        respond: dict[str, Any] = {"status": status}
        declared = op.responses.get(status)
        if not parsed or not isinstance(value, dict):
            if declared is None or declared.content_type is not None:
                return respond, [f"the answer's body is not {'a JSON object' if parsed else 'JSON'}, so it is not "
                                 f"recorded: a replay answers the contract's body for status {status}"]
            return respond, []
        body = copy.deepcopy(value)
        notes = []
        if declared is not None:
            left = _drop_unnamed(body, declared.validator)
            if left:
                notes.append("left out, as the contract does not name them: " + ", ".join(left))
        respond["body"] = self._hide(body)
        return respond, notes

    # -- secrets

    def _hide(self, value: Any, secret: str | None = None) -> Any:
        """The body with every secret replaced by its stand-in and known secrets scrubbed."""
        if isinstance(value, dict):
            return {self._scrub(k): self._hide(v, k if (k in self.secret_fields or k in self.write_only) else secret)
                    for k, v in value.items()}
        if isinstance(value, list):
            return [self._hide(v, secret) for v in value]
        if isinstance(value, str):
            return self._stand_in(secret, value) if secret is not None and value else self._scrub(value)
        return value

    def _stand_in(self, field: str, secret: str) -> str:
        digest = hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()
        known = self._stand_ins.get(digest)
        if known is None:
            known = self._stand_ins[digest] = self._generate(field, secret)
        return known

    def _generate(self, field: str, secret: str) -> str:
        """A value of the secret's form (its prefix, length and alphabet), valid where its schema says."""
        prefix = _PREFIX.match(secret)
        head = prefix.group(0) if prefix else ""
        rest = secret[len(head):]
        chars = [c for c in rest if c.isascii() and c.isalnum()]
        used = set(chars)
        if used <= _HEX:
            alphabet = "0123456789abcdef"
        elif used <= _UPPER_HEX:
            alphabet = "0123456789ABCDEF"
        else:
            alphabet = "".join(part for part in (string.ascii_lowercase, string.ascii_uppercase, string.digits)
                               if used & set(part))
        for _ in range(3):
            drawn = iter(self.generator.pick(alphabet, len(chars))) if chars else iter(())
            candidate = head + "".join(next(drawn) if c.isascii() and c.isalnum() else c for c in rest)
            if not chars:
                candidate = head + self.generator.pick(string.ascii_letters + string.digits, max(len(rest), 16))
            if candidate != secret and self._fits(field, candidate):
                return candidate
        schema = self.secret_fields.get(field)
        if schema:
            try:
                made = compile_maker(schema)(self.generator)
            except GenerationError:
                made = None
            if isinstance(made, str) and made != secret:
                return made
        return self.generator.token("", max(len(secret), 16))

    def _fits(self, field: str, value: str) -> bool:
        if field not in self._validators:
            schema = self.secret_fields.get(field)
            try:
                self._validators[field] = compile_validator(schema) if schema else None
            except Exception:  # a schema this cannot check: the form of the secret is the guide
                self._validators[field] = None
        validator = self._validators[field]
        return validator is None or validator.is_valid(value)

    def _scrub(self, text: str) -> str:
        return self.secrets.scrub(text) if self.secrets else text

    # -- writing

    def render(self) -> str:
        ordered = sorted(self.rules.values(), key=lambda r: (not r.success, -r.leaves, r.seen))
        head = yaml.safe_dump({"name": self.name,
                               "description": f"What {self.source} answered, recorded by mockserver proxy."},
                              sort_keys=False, allow_unicode=True, width=100)
        lines = [f"# Recorded by mockserver proxy --record from {self.source}.",
                 f"# Replay: mockserver serve --scenarios-dir {self.path.parent} --scenario {self.name}",
                 "# Secrets in answers are generated stand-ins; credentials and write-only fields are never written.",
                 head.rstrip("\n"),
                 "rules:" if ordered else "rules: []"]
        lines += [rule.text.rstrip("\n") for rule in ordered]
        return "\n".join(lines) + "\n"

    async def flush(self) -> None:
        """Write the file if anything changed since it was last written (off the event loop)."""
        async with self._lock:
            if not self._dirty:
                return
            self._dirty = False
            text = self.render()
            try:
                await asyncio.to_thread(self._write, text)
            except OSError:
                self._dirty = True
                raise

    def _write(self, text: str) -> None:
        partial = self.path.with_name(f".{self.path.name}.tmp")  # not a scenario file: never loaded half-written
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, self.path)


def _drop_unnamed(body: dict[str, Any], validator: Validator) -> list[str]:
    """Remove the properties a closed object of the schema does not name; their dotted paths."""
    removed: list[str] = []
    for _ in range(8):  # each pass can only uncover deeper objects of what it kept
        extra = [e for e in validator.iter_errors(body)
                 if e.validator == "additionalProperties" and isinstance(e.instance, dict)]
        if not extra:
            break
        for error in extra:
            declared = error.schema.get("properties", {})
            patterns = error.schema.get("patternProperties") or {}
            for name in [k for k in error.instance if k not in declared]:
                if any(re.search(p, name) for p in patterns):
                    continue
                del error.instance[name]
                removed.append(format_path([*error.absolute_path, name]))
    return removed


def _one_line(note: str) -> str:
    """A note fit for a comment line: its indentation kept, every other run of white space one space."""
    indent = len(note) - len(note.lstrip(" "))
    return " " * indent + " ".join(note.split())


def _leaves(value: Any) -> int:
    if isinstance(value, dict):
        return sum(_leaves(v) for v in value.values()) if value else 1
    if isinstance(value, list):
        return sum(_leaves(v) for v in value) if value else 1
    return 1
