"""Logging for ``mockserver serve``: one line per request, cheap enough to leave on.

Python's logging costs tens of microseconds per record with the defaults (a stack
walk to find the caller, two strftime calls, a write and flush per line), which
at thousands of requests per second is a large share of the mock's time. This
keeps the standard logging API and format, but skips the caller lookup, formats
the timestamp once per second and writes through a buffer flushed a few times
per second (and at once for warnings and errors).

Known secret values never reach a line: ``scrub_with(secrets)`` (called once by
whoever builds a mock, with ``journal.secrets``) makes the ``SCRUB`` filter replace
them in every record of the mock's loggers and of the handler ``configure``
installs (which sees every logger, aiohttp's included), and in the access lines
written directly.
"""

from __future__ import annotations

import io
import logging
import sys
import threading
import time
import weakref
from typing import Callable, Protocol, TextIO

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
FLUSH_INTERVAL_S = 0.2


class _Formatter(logging.Formatter):
    """The standard format, with the date part of the timestamp computed once per second."""

    _second = -1
    _text = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        second = int(record.created)
        if second != self._second:
            self._second = second
            self._text = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        return f"{self._text},{int(record.msecs):03d}"


class Scrubber(Protocol):
    """Anything that removes secrets from text; ``journal.SecretSet`` is one."""

    def scrub(self, text: str) -> str: ...


class ScrubSecrets(logging.Filter):
    """Replaces known secret values in a record's message, traceback and stack.

    Holds its scrubbers weakly, so a mock that is gone is dropped at the next ``add``.
    (Not by a weakref callback: that runs inside a garbage collection, possibly while
    this thread holds the lock.) The record is changed in place, so every handler after
    this point sees the clean text.
    """

    def __init__(self) -> None:
        super().__init__()
        self._refs: tuple[weakref.ref[Scrubber], ...] = ()
        self._lock = threading.Lock()

    def add(self, scrubber: Scrubber) -> None:
        with self._lock:
            live = tuple(ref for ref in self._refs if ref() is not None)
            if not any(ref() is scrubber for ref in live):
                live += (weakref.ref(scrubber),)
            self._refs = live

    def discard(self, scrubber: Scrubber) -> None:
        with self._lock:
            self._refs = tuple(ref for ref in self._refs if ref() is not None and ref() is not scrubber)

    def __bool__(self) -> bool:
        return bool(self._refs)

    def scrub(self, text: str) -> str:
        for ref in self._refs:
            scrubber = ref()
            if scrubber is not None:
                text = scrubber.scrub(text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._refs:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: the handler reports it, as without this filter
            return True
        clean = self.scrub(message)
        if clean is not message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = _TRACEBACKS.formatException(record.exc_info)  # what Formatter.format would cache
        if record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = self.scrub(record.stack_info)
        return True


_TRACEBACKS = logging.Formatter()
SCRUB = ScrubSecrets()
# The loggers aiohttp's server side writes to: a bad request line or a test server's access log
# names the path the client sent.
_AIOHTTP_SERVER_LOGGERS = ("aiohttp.access", "aiohttp.server", "aiohttp.web", "aiohttp.internal")


def scrub_with(secrets: Scrubber) -> Callable[[], None]:
    """Keep what ``secrets`` knows out of every line the mock logs; returns the undo.

    Attaches ``SCRUB`` to the mock's loggers as they exist now and to aiohttp's server
    loggers (a logger's filter only sees its own records, not its children's), and
    ``configure`` attaches it to its handler, whenever that runs. ``secrets`` is held
    weakly; calling this twice is harmless.
    """
    SCRUB.add(secrets)
    names = {"mockserver", ACCESS.logger.name, *_AIOHTTP_SERVER_LOGGERS}
    names.update(name for name in list(logging.Logger.manager.loggerDict)
                 if name.startswith("mockserver."))
    for name in names:
        logging.getLogger(name).addFilter(SCRUB)  # once: addFilter skips a filter it has
    held = weakref.ref(secrets)

    def stop() -> None:
        scrubber = held()
        if scrubber is not None:
            SCRUB.discard(scrubber)

    return stop


class BufferedHandler(logging.StreamHandler):
    """Writes records into a buffer; ``tick()`` (called periodically) and warnings flush it."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self._last_flush = time.monotonic()

    def flush(self) -> None:  # called by emit() after every record: defer it
        if time.monotonic() - self._last_flush >= FLUSH_INTERVAL_S:
            self.tick()

    def emit(self, record: logging.LogRecord) -> None:
        super().emit(record)
        if record.levelno >= logging.WARNING:
            self.tick()

    def tick(self) -> None:
        self._last_flush = time.monotonic()
        super().flush()

    def close(self) -> None:
        self.tick()
        super().close()


class AccessLog:
    """One line per answered request on the ``mockserver.access`` logger.

    By default it goes through ``logging`` like everything else, so pytest's
    caplog and any user configuration see it. ``serve`` switches it to a direct
    writer into its own buffered handler: the same line, without the per-record
    machinery of the logging module.
    """

    def __init__(self) -> None:
        self.logger = logging.getLogger("mockserver.access")
        self._direct: BufferedHandler | None = None

    def enabled(self) -> bool:
        if self._direct is not None:
            return True
        return self.logger.isEnabledFor(logging.INFO)

    def line(self, message: str) -> None:
        if SCRUB:  # the path is the client's: it may carry a secret
            message = SCRUB.scrub(message)
        direct = self._direct
        if direct is None:
            self.logger.info("%s", message)
            return
        now = time.time()
        stamp = direct.formatter.formatTime(_Stamp(now)) if direct.formatter else ""
        direct.stream.write(f"{stamp} INFO mockserver.access: {message}\n")
        direct.flush()

    def write_directly(self, handler: BufferedHandler | None) -> None:
        self._direct = handler


class _Stamp:
    """The two attributes Formatter.formatTime reads from a record."""

    __slots__ = ("created", "msecs")

    def __init__(self, created: float) -> None:
        self.created = created
        self.msecs = (created - int(created)) * 1000


ACCESS = AccessLog()


def configure(level: str, stream: TextIO | None = None) -> BufferedHandler:
    """Set up the root logger for ``serve``; returns the handler so the server can tick it."""
    target = stream or sys.stderr
    if target is sys.stderr and hasattr(target, "fileno"):
        try:  # stderr is line-buffered: one write syscall per line; buffer it instead
            target = io.TextIOWrapper(open(target.fileno(), "wb", closefd=False), encoding="utf-8",
                                      errors="backslashreplace", write_through=False)
        except (OSError, ValueError, io.UnsupportedOperation):
            target = stream or sys.stderr
    handler = BufferedHandler(target)
    handler.setFormatter(_Formatter(FORMAT))
    handler.addFilter(SCRUB)  # every logger's records, whoever wired which secrets
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging._srcfile = None  # type: ignore[attr-defined]  # no stack walk for the caller's file and line
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    access_enabled = logging.getLogger("mockserver.access").isEnabledFor(logging.INFO)
    ACCESS.write_directly(handler if access_enabled else None)
    return handler
