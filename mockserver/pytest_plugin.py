"""pytest plugin: a real mock server per test session, a clean slate per test.

Registered through the ``pytest11`` entry point, so installing the package is all
it takes. One server per session (per worker under pytest-xdist) runs in its own
thread; before every test its journal, counters, bindings and scenario are reset, and the
scenarios added at run time (``when()``, ``add_scenario()``) are gone.

pytest imports this module at the start of every session of every project that has the
package installed, whether or not a test asks for the fixture; so it imports only pytest
and the standard library here, and the server code (aiohttp, the contract loader,
jsonschema, faker) inside the fixtures and methods that need it.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

import pytest

if TYPE_CHECKING:
    from .server import ServerThread

_OPTIONS = (
    ("openapi", "OpenAPI document(s) for the mockserver fixture, comma-separated (default: the bundled contract)"),
    ("overlay", "Overlay(s) applied to those documents, comma-separated: files, or the bundled 'solvimon' and "
                "'solvimon-webhooks'"),
    ("scenarios_dir", "scenario directories for the mockserver fixture, comma-separated (repeatable); loaded "
                      "beside the bundled library"),
    ("seed", "seed making the mockserver fixture's bodies reproducible"),
    ("state", "Redis URL (redis://HOST:PORT/DB) holding the mockserver fixture's run-time state; each test "
              "process (xdist worker) keeps its own key prefix there (default: in memory)"),
)
_REPEATABLE = {"scenarios_dir"}
_NO_BUNDLED = "leave the bundled scenario library out of the mockserver fixture"

# The run-time scenario that ``mockserver.when(...).respond(...)`` builds, one rule per call.
WHEN_SCENARIO = "mockserver-when"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mockserver", "contract mock of the Solvimon webhooks API")
    for name, help_text in _OPTIONS:
        group.addoption(f"--mockserver-{name.replace('_', '-')}", dest=f"mockserver_{name}", default=None,
                        action="append" if name in _REPEATABLE else "store", help=help_text)
        parser.addini(f"mockserver_{name}", help_text, default=None)
    group.addoption("--mockserver-no-bundled-scenarios", dest="mockserver_no_bundled_scenarios",
                    action="store_true", default=False, help=_NO_BUNDLED)
    parser.addini("mockserver_no_bundled_scenarios", _NO_BUNDLED, type="bool", default=False)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "mockserver(scenario=None): run this test with a scenario selected")


def _option(config: pytest.Config, name: str) -> Any:
    value = config.getoption(f"mockserver_{name}")
    if value is None:
        value = config.getini(f"mockserver_{name}") or None
    return value


def _settings(config: pytest.Config) -> dict[str, Any]:
    """Options from the command line, else the ini file; relative paths are from the rootdir."""
    from .contract.build import BUNDLED_OVERLAYS

    def listed(name: str) -> list[str]:
        value = _option(config, name)
        if not value:
            return []
        given = value if isinstance(value, list) else [value]  # a repeated option, or one value
        return [v.strip() for one in given for v in str(one).replace("\n", ",").split(",") if v.strip()]

    def rooted(value: str) -> Path:
        p = Path(value)
        return p if p.is_absolute() else Path(config.rootpath) / p

    seed = _option(config, "seed")
    openapi = [rooted(v) for v in listed("openapi")]
    overlays = [v if v in BUNDLED_OVERLAYS else str(rooted(v)) for v in listed("overlay")]
    no_bundled = config.getoption("mockserver_no_bundled_scenarios") or config.getini("mockserver_no_bundled_scenarios")
    return {
        "openapi": tuple(openapi),
        "overlays": tuple(overlays),
        "scenarios_dir": tuple(rooted(v) for v in listed("scenarios_dir")),
        # The bundled library is written for the bundled contract: with another, only the user's.
        "bundled_scenarios": not no_bundled and not openapi,
        "seed": int(seed) if seed is not None else None,
        "state": _option(config, "state") or None,
        # One prefix per test process: xdist workers, and two runs sharing one server, never meet.
        "state_prefix": f"mockserver-pytest-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}-{os.getpid()}",
    }


class MockServer:
    """What a test gets from the ``mockserver`` fixture."""

    def __init__(self, server: ServerThread, test: str = "") -> None:
        self._server = server
        self._test = test
        self._when_rules: list[dict[str, Any]] = []  # what when() added, in order: the rules of WHEN_SCENARIO
        self._added: set[str] = set()  # run-time scenarios this test added, removed when it ends

    @property
    def url(self) -> str:
        """Base URL, such as ``http://127.0.0.1:PORT``."""
        return self._server.url

    def reset(self) -> None:
        """Back to the start-up state; the scenarios added at run time are gone too."""
        self._server.call(self._server.mock.reset)
        self._when_rules.clear()
        self._added.clear()

    def use(self, name: str | None, *, api_key: str | None = None, token: str | None = None) -> "_Selection":
        """Select a scenario (for everyone, or for one API key or token); also a context manager."""
        from .scenarios import UnknownScenario

        # An empty credential must not fall through to "everyone": a test that binds a scenario
        # to a key it forgot to fill in would pass or fail for every other client too.
        if api_key is not None and token is not None:
            raise ValueError("give api_key or token, not both: a scenario is bound to one credential")
        for argument, value in (("api_key", api_key), ("token", token)):
            if value == "":
                raise ValueError(f"{argument} is empty: give the one the client sends, "
                                 f"or leave {argument} out to select the scenario for every client")
        kind, credential = (("api_key", api_key) if api_key is not None
                            else ("token", token) if token is not None else (None, None))
        book = self._server.mock.book
        previous = self._server.call(book.active) if kind is None else None
        if kind is None and previous == WHEN_SCENARIO and name not in (None, WHEN_SCENARIO):
            raise ValueError(f"this test's when() rules are the server-wide scenario; use({name!r}) would put them "
                             f"aside: bind {name!r} to one client instead (use({name!r}, api_key=...))")
        try:
            self._server.call(book.select, name, kind, credential)
        except UnknownScenario:
            known = ", ".join(sorted(book.scenarios)) or "none"
            raise ValueError(f"unknown scenario {name!r}; loaded scenarios: {known}") from None
        return _Selection(self, previous, kind, credential)

    def when(self, method: str | None = None, path: Any = None, *, body: Mapping[str, Any] | None = None,
             headers: Mapping[str, Any] | None = None, query: Mapping[str, Any] | None = None,
             version: Any = None, name: str | None = None) -> "When":
        """Script an answer for the requests that match, for this test only: ``respond()`` on what
        this returns adds the rule. Conditions are those of a scenario file's ``match`` (a value
        may be ``{"regex": ...}``; ``body`` matches as a subset). Rules are tried in the order
        they were added and the first that matches answers; unmatched requests get the contract's
        answer. The rules form a run-time scenario selected for every client, so they cannot be
        combined with another server-wide scenario (bind that one to a key instead)."""
        conditions = {"method": method, "path": path, "version": version, "headers": headers,
                      "query": query, "body": body}
        match = {key: _plain(value) for key, value in conditions.items() if value is not None}
        return When(self, match, name)

    def add_scenario(self, name: str, rules: Sequence[Mapping[str, Any]], *,
                     description: str | None = None) -> "AddedScenario":
        """Add (or replace) a run-time scenario, as a scenario file would define it, for this test
        only; select it with ``use(name)``, the marker or the ``X-Mock-Scenario`` header. Checked
        against the contract as a file is: a problem is a ValueError with the file's message."""
        doc: dict[str, Any] = {"rules": [_plain(rule) for rule in rules]}
        if description is not None:
            doc["description"] = description
        self._install(name, doc, f"mockserver.add_scenario({name!r})")
        self._added.add(name)
        return AddedScenario(self, name, [ScriptedRule(self, name, i) for i in range(len(doc["rules"]))])

    def _when(self, rule: dict[str, Any]) -> "ScriptedRule":
        rules = [*self._when_rules, rule]
        self._install(WHEN_SCENARIO, {"rules": rules}, "mockserver.when(...).respond(...)", select=True,
                      only=len(rules) - 1)
        self._when_rules.append(rule)
        self._added.add(WHEN_SCENARIO)
        return ScriptedRule(self, WHEN_SCENARIO, len(rules) - 1)

    def _install(self, name: str, doc: dict[str, Any], label: str, select: bool = False,
                 only: int | None = None) -> None:
        """Check ``doc`` as a scenario file and put it, on the server's loop in one step."""
        from .errors import LoadError
        from .scenarios import RUNTIME, NameTaken, ScriptChecker, invalid_name, load_scenario_text

        bad = invalid_name(name)
        if bad is not None:
            raise ValueError(f"{label}: invalid scenario name: {bad}")
        try:
            text = json.dumps(doc)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{label}: a scenario holds JSON values only: {exc}") from None
        mock = self._server.mock
        book = mock.book
        source = f"pytest {self._test}".rstrip()

        async def install() -> None:
            # On the loop: the contract's validators and the book are only ever used there.
            active = await book.active()
            if select and active not in (None, name):
                raise ValueError(f"{label}: scenario {active!r} is selected for every client, and when() "
                                 f"rules need that place; bind {active!r} to one client instead "
                                 f"(use({active!r}, api_key=...)) or leave it out of this test")
            scenario = load_scenario_text(text, label, ScriptChecker(mock.contract), name=name,
                                          origin=RUNTIME, source=source, as_json=True)
            await book.put(scenario, keep_counts=select)  # when() only appends: earlier rules keep their uses
            if select and active != name:
                await book.select(name)

        try:
            self._server.call(install)
        except LoadError as exc:
            message = exc.message
            if only is not None:  # when() names one rule: say where within it, not where in the scenario
                message = message.replace(f"at rules.{only}.", "at ", 1).replace(f"at rules.{only}:", "at the rule:", 1)
            raise ValueError(f"{label}: {message}") from None
        except NameTaken as exc:
            raise ValueError(f"{label}: scenario {name!r} is defined by the file {exc}; "
                             "pick another name") from None

    def _cleanup(self) -> None:
        """Remove the run-time scenarios this test added (the next test's reset would too)."""
        if not self._added:
            return
        from .scenarios import RUNTIME

        book = self._server.mock.book
        names = sorted(self._added)

        async def remove() -> None:
            if await book.active() in names:
                await book.select(None)
            for name in names:
                held = book.scenarios.get(name)
                if held is not None and held.origin == RUNTIME:
                    await book.remove(name)

        self._server.call(remove)
        self._added.clear()
        self._when_rules.clear()

    @property
    def requests(self) -> list[dict[str, Any]]:
        """The journal, oldest first (secrets redacted), as the admin API shows it."""
        return self._server.call(self._server.mock.journal.snapshot)

    def assert_called(self, times: int | None = None, *, method: str | None = None,
                      path: str | None = None, status: int | None = None) -> list[dict[str, Any]]:
        """Assert requests were received (exactly ``times`` if given); returns the matching ones."""
        entries = self.requests
        hits = [e for e in entries if _fits(e, method, path, status)]
        if (times is None and not hits) or (times is not None and len(hits) != times):
            wanted = "at least 1" if times is None else str(times)
            raise AssertionError(
                f"expected {wanted} request(s){_describe(method, path, status)}, got {len(hits)}.\n"
                + _received(entries))
        return hits

    def assert_called_with(self, body: Any = None, *, headers: dict[str, str] | None = None,
                           method: str | None = None, path: str | None = None,
                           query: dict[str, str] | None = None) -> dict[str, Any]:
        """Assert some request matched (body as a subset); on failure show the closest ones."""
        from .scenarios import subset_matches

        entries = [e for e in self.requests if _fits(e, method, path, None)]
        wanted_headers = {k.lower(): v for k, v in (headers or {}).items()}
        for entry in entries:
            if ((body is None or subset_matches(body, entry["body"]))
                    and subset_matches(wanted_headers, entry["headers"])
                    and (query is None or subset_matches(query, entry["query"]))):
                return entry
        closest = sorted(entries, key=lambda e: -_closeness(body, e["body"]))[:3]
        lines = [f"no request{_describe(method, path, None)} matched"]
        if body is not None:
            lines.append(f"  expected body to contain: {body!r}")
        if headers:
            lines.append(f"  expected headers: {headers!r}")
        if query:
            lines.append(f"  expected query: {query!r}")
        lines.append(_received(closest, title="closest requests received") if closest else "no requests were received")
        raise AssertionError("\n".join(lines))

    def assert_not_called(self, *, method: str | None = None, path: str | None = None) -> None:
        self.assert_called(0, method=method, path=path)

    @property
    def deliveries(self) -> list[dict[str, Any]]:
        """Every delivery attempt to a webhook receiver, oldest first."""
        return self._server.call(self._server.mock.deliveries.snapshot)

    def emit(self, event_type: str, data: dict[str, Any] | None = None, platform: str | None = None) -> dict[str, Any]:
        """Send an event (such as ``INVOICE.CREATED``) to every webhook that selects it."""
        result = self._server.call(self._server.mock.deliveries.emit, event_type, data, platform)
        if not isinstance(result, dict):
            raise ValueError(result.message)
        return result

    def wait_for_deliveries(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait until at least ``count`` delivery attempts were made; deliveries run in the background."""
        deadline = time.monotonic() + timeout
        while True:
            attempts = self.deliveries
            if len(attempts) >= count:
                return attempts
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} delivery attempt(s) within {timeout:g} s, got "
                                     f"{len(attempts)}: {attempts!r}")
            time.sleep(0.01)


class When:
    """What ``mockserver.when(...)`` returns: ``respond(...)`` adds the rule and returns its handle."""

    def __init__(self, mock: MockServer, match: dict[str, Any], name: str | None) -> None:
        self._mock, self._match, self._name = mock, match, name

    def respond(self, status: int | None = None, *, body: Mapping[str, Any] | None = None,
                headers: Mapping[str, Any] | None = None, times: int | None = None,
                delay_ms: int | None = None, fault: str | None = None) -> "ScriptedRule":
        """Answer ``status`` (any the matched operations list), ``body`` merged over the contract's
        body for it, extra ``headers``, after ``delay_ms``, or a ``fault`` (reset, empty, malformed);
        only the first ``times`` matching requests when given."""
        respond = {"status": status, "body": body, "headers": headers, "delay_ms": delay_ms, "fault": fault}
        rule: dict[str, Any] = {}
        if self._name is not None:
            rule["name"] = self._name
        if self._match:
            rule["match"] = self._match
        if times is not None:
            rule["times"] = times
        rule["respond"] = {key: _plain(value) for key, value in respond.items() if value is not None}
        return self._mock._when(rule)


class ScriptedRule:
    """One rule added by the fixture; says how often it answered since the test began."""

    def __init__(self, mock: MockServer, scenario: str, index: int) -> None:
        self._mock, self.scenario, self.index = mock, scenario, index

    @property
    def calls(self) -> int:
        """How many requests this rule answered (a rule is counted only when it answers)."""
        server = self._mock._server
        return server.call(server.mock.book.answered, self.scenario)[self.index]

    def assert_called(self, times: int | None = None) -> int:
        """Assert the rule answered (exactly ``times`` when given); returns how often it did."""
        calls = self.calls
        if (times is None and calls == 0) or (times is not None and calls != times):
            wanted = "at least once" if times is None else f"{times} time(s)"
            raise AssertionError(f"expected rule {self.index} of scenario {self.scenario!r} to answer {wanted}, "
                                 f"it answered {calls}.\n" + _received(self._mock.requests))
        return calls

    def assert_not_called(self) -> None:
        self.assert_called(0)

    def __repr__(self) -> str:
        return f"<ScriptedRule {self.scenario!r} rule {self.index}>"


class AddedScenario:
    """What ``mockserver.add_scenario(...)`` returns: its name and a handle per rule."""

    def __init__(self, mock: MockServer, name: str, rules: list[ScriptedRule]) -> None:
        self._mock, self.name, self.rules = mock, name, rules

    @property
    def calls(self) -> list[int]:
        """How many requests each rule answered, in order."""
        server = self._mock._server
        return server.call(server.mock.book.answered, self.name)


def _plain(value: Any) -> Any:
    """Mappings and sequences as the JSON a scenario file holds (a tuple is a list)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


class _Selection:
    """Undoes ``use()`` when used as a context manager."""

    def __init__(self, mock: MockServer, previous: str | None, kind: str | None, credential: str | None) -> None:
        self._mock, self._previous, self._kind, self._credential = mock, previous, kind, credential

    def __enter__(self) -> MockServer:
        return self._mock

    def __exit__(self, *exc: object) -> None:
        book = self._mock._server.mock.book
        self._mock._server.call(book.select, self._previous if self._kind is None else None,
                                self._kind, self._credential)


def _fits(entry: dict[str, Any], method: str | None, path: str | None, status: int | None) -> bool:
    return ((method is None or entry["method"] == method.upper())
            and (path is None or entry["path"] == path)
            and (status is None or entry["status"] == status))


def _describe(method: str | None, path: str | None, status: int | None) -> str:
    parts = [p for p in (method and method.upper(), path) if p]
    text = (" to " + " ".join(parts)) if parts else ""
    return text + (f" answered {status}" if status is not None else "")


def _received(entries: list[dict[str, Any]], title: str = "requests received") -> str:
    if not entries:
        return "no requests were received"
    rows = [f"{title} ({len(entries)}):"]
    for e in entries[-10:]:
        rows.append(f"  {e['method']} {e['path']} -> {e['status']} body={e['body']!r}")
    return "\n".join(rows)


def _closeness(expected: Any, actual: Any) -> int:
    """How many of the expected top-level keys the body has right."""
    from .scenarios import subset_matches

    if not isinstance(expected, dict) or not isinstance(actual, dict):
        return 0
    return sum(1 for k, v in expected.items() if k in actual and subset_matches(v, actual[k]))


@pytest.fixture(scope="session")
def mockserver_session(pytestconfig: pytest.Config) -> Iterator[ServerThread]:
    """The session's server; started the first time a test asks for ``mockserver``."""
    from .app import build_mock, create_app
    from .server import ServerThread

    settings = _settings(pytestconfig)
    mock = build_mock(**settings, fast_retries=True, hot_reload=False)
    server = ServerThread(create_app(mock=mock)).start()
    yield server
    server.stop()


@pytest.fixture
def mockserver(mockserver_session: ServerThread, request: pytest.FixtureRequest) -> Iterator[MockServer]:
    """A running mock with a clean journal and scenario state; ``@pytest.mark.mockserver(scenario=...)`` selects one."""
    handle = MockServer(mockserver_session, request.node.nodeid)
    handle.reset()
    marker = request.node.get_closest_marker("mockserver")
    if marker is not None and marker.kwargs.get("scenario"):
        handle.use(marker.kwargs["scenario"])
    yield handle
    handle._cleanup()


@pytest.fixture
def mockserver_app(pytestconfig: pytest.Config) -> Any:
    """A factory of in-process mock Applications (for pytest-aiohttp's ``aiohttp_client``)."""
    from .app import create_app

    settings = _settings(pytestconfig)

    def factory(**overrides: Any) -> Any:
        return create_app(**{**settings, "hot_reload": False, **overrides})

    return factory
