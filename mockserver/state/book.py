"""The scenario book's run-time state: which scenario answers whom, and how often each rule did.

:class:`~mockserver.scenarios.ScenarioBook` holds the scenarios themselves (compiled, on each
replica); what changes while the mock runs is kept by a ledger, the only code that changes it:

* the server-wide scenario (unset: the book's start-up default; or explicitly none);
* client bindings, by credential (a binding is shown by its fingerprint only);
* ``times`` counters, per scenario, client and rule: a rule with ``times: N`` answers N times;
* how often each rule answered, whoever chose it (only ever grows until a reset or a reload);
* the documents of run-time scenarios, for a ledger shared by several replicas, with a
  version that moves on at every change so each replica knows when to compile them again.

:class:`MemoryLedger` is one process's; ``state.redis.RedisLedger`` is the same interface on
Redis, shared by every replica. Every method is a coroutine so that the book has one code
path over both; the in-memory one never suspends, so a sequence of its calls is one step.
"""

from __future__ import annotations

import hashlib
from typing import Any, Protocol, Sequence

__all__ = ["Ledger", "MemoryLedger", "UNSET", "client_of", "fingerprint"]


def fingerprint(secret: str) -> str:
    """A stable, non-reversible name for a credential, for the admin API and logs."""
    return "sha256:" + hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()[:12]


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


class Ledger(Protocol):
    """What the scenario book needs from whoever keeps its run-time state."""

    async def lookup(self, credentials: Sequence[tuple[str, str]],
                     default: str | None) -> tuple[str | None, list[str | None], int]:
        """(server-wide scenario, what each credential is bound to, run-time scenarios' version)."""

    async def take(self, scenario: str, client: str | None, rule: int, times: int | None) -> bool:
        """Count one use of a rule if it has uses left (``times`` None: unlimited); True if it did."""

    async def refund(self, scenario: str, client: str | None, rule: int) -> None: ...

    async def set_active(self, name: str | None) -> None: ...

    async def bind(self, kind: str, credential: str, name: str | None) -> None:
        """Bind (None: unbind) a client; its ``times`` counters start afresh in the same step."""

    async def bindings(self) -> list[tuple[str, str, str]]:
        """(kind, fingerprint, scenario) of every binding, sorted."""

    async def forget(self, name: str) -> tuple[bool, int]:
        """A scenario is gone: not server-wide, nobody bound to it, its counts dropped.
        Returns (it was the server-wide one, clients unbound)."""

    async def restart(self, name: str, answers: bool = True) -> None:
        """A scenario's counters (and, with ``answers``, its answered counts) start again."""

    async def answered(self, name: str) -> dict[int, int]: ...

    async def counters(self) -> dict[tuple[str, str | None], dict[int, int]]: ...

    async def put_scenario(self, name: str, document: str) -> None: ...

    async def drop_scenario(self, name: str) -> None: ...

    async def runtime(self) -> tuple[int, dict[str, str]]:
        """(version, name -> document) of the run-time scenarios a shared ledger holds."""

    async def clear(self) -> None: ...


def client_of(kind: str, credential: str) -> str:
    """How counters name a bound client: its kind and the credential's fingerprint."""
    return f"{kind}:{fingerprint(credential)}"


class MemoryLedger:
    """One process's ledger. Run-time scenarios stay in the book alone: nothing to share."""

    shared = False

    def __init__(self) -> None:
        self._active: Any = UNSET
        self._bindings: dict[tuple[str, str], str] = {}
        self._counters: dict[tuple[str, str | None], dict[int, int]] = {}
        self._answers: dict[str, dict[int, int]] = {}

    async def lookup(self, credentials: Sequence[tuple[str, str]],
                     default: str | None) -> tuple[str | None, list[str | None], int]:
        bindings = self._bindings
        bound = [bindings.get(c) for c in credentials] if bindings else [None] * len(credentials)
        return (default if self._active is UNSET else self._active), bound, 0

    async def take(self, scenario: str, client: str | None, rule: int, times: int | None) -> bool:
        counts = self._counters.setdefault((scenario, client), {})
        used = counts.get(rule, 0)
        if times is not None and used >= times:
            return False
        counts[rule] = used + 1
        answered = self._answers.setdefault(scenario, {})
        answered[rule] = answered.get(rule, 0) + 1
        return True

    async def refund(self, scenario: str, client: str | None, rule: int) -> None:
        for counts in (self._counters.get((scenario, client)), self._answers.get(scenario)):
            if counts and counts.get(rule, 0) > 0:
                counts[rule] -= 1

    async def set_active(self, name: str | None) -> None:
        self._active = name

    async def bind(self, kind: str, credential: str, name: str | None) -> None:
        if name is None:
            self._bindings.pop((kind, credential), None)
        else:
            self._bindings[(kind, credential)] = name
        client = client_of(kind, credential)
        self._counters = {k: v for k, v in self._counters.items() if k[1] != client}

    async def bindings(self) -> list[tuple[str, str, str]]:
        return sorted((kind, fingerprint(value), name) for (kind, value), name in self._bindings.items())

    async def forget(self, name: str) -> tuple[bool, int]:
        await self.restart(name)
        was = self._active is not UNSET and self._active == name
        if was:
            self._active = None
        bound = [key for key, to in self._bindings.items() if to == name]
        for key in bound:
            del self._bindings[key]
        return was, len(bound)

    async def restart(self, name: str, answers: bool = True) -> None:
        self._counters = {k: v for k, v in self._counters.items() if k[0] != name}
        if answers:
            self._answers.pop(name, None)

    async def answered(self, name: str) -> dict[int, int]:
        return dict(self._answers.get(name, {}))

    async def counters(self) -> dict[tuple[str, str | None], dict[int, int]]:
        return {k: dict(v) for k, v in self._counters.items()}

    async def put_scenario(self, name: str, document: str) -> None:
        return None

    async def drop_scenario(self, name: str) -> None:
        return None

    async def runtime(self) -> tuple[int, dict[str, str]]:
        return 0, {}

    async def clear(self) -> None:
        self._active = UNSET
        self._bindings.clear()
        self._counters.clear()
        self._answers.clear()

