"""Run-time state, one owner per kind.

Each owner is the only code that changes its state, and each has a small interface so a
second implementation (shared state on another store) can stand in for the in-memory one:

* :mod:`.store`: resources clients created, per tenant;
* ``mockserver.journal``: what the mock received and answered;
* :mod:`.book` (the ledger of ``mockserver.scenarios.ScenarioBook``): the scenario selection,
  client bindings, ``times`` counters and how often each rule answered;
* ``mockserver.lifecycle.Deliveries``: per-webhook delivery state and queues.

:mod:`.redis` has the same owners on Redis (``--state redis://...``), shared by every replica.

:class:`Epoch` is the reset barrier they share: every request and delivery carries the
epoch it started in, and work of an older epoch is not stored, journaled or delivered.
"""

from __future__ import annotations

__all__ = ["Epoch", "StateUnavailable"]


class StateUnavailable(Exception):
    """The state store cannot be reached, or did not answer in time. The message names the
    store by its URL without the password; ``reason`` is why, without it too."""

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason if reason is not None else message


class Epoch:
    """The reset barrier: a counter that moves on at every reset.

    Work remembers the value it started with and asks :meth:`current` before it leaves
    a trace; a request still in flight when a test ends cannot leak into the next test.
    """

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def advance(self) -> int:
        self.value += 1
        return self.value

    def current(self, started: int) -> bool:
        return started == self.value
