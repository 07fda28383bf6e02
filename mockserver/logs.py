"""Logging for ``mockserver serve``: one line per request, cheap enough to leave on.

Python's logging costs tens of microseconds per record with the defaults (a stack
walk to find the caller, two strftime calls, a write and flush per line), which
at thousands of requests per second is a large share of the mock's time. This
keeps the standard logging API and format, but skips the caller lookup, formats
the timestamp once per second and writes through a buffer flushed a few times
per second (and at once for warnings and errors).
"""

from __future__ import annotations

import io
import logging
import sys
import time
from typing import TextIO

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
