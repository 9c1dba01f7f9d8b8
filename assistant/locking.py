"""Writers of one data folder take turns: a file lock held across each write, and crash points.

Embedded Chroma, the keyword index's swap and the cleanup after a crash are each safe only for
one writer at a time, and the chat window and `assistant add` may share a folder. Readers never
take this lock.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

CRASH_ENV = "ASSISTANT_TEST_CRASH_AT"


class Busy(Exception):
    """Another process held the write lock for longer than we could wait."""


class WriteLock:
    """An exclusive lock on a data folder for writers, reentrant within a thread."""

    def __init__(self, path: Path, timeout: float) -> None:
        self.path = path
        self.timeout = timeout
        # Threads of one process each hold it in turn too (one flock per thread).
        self._lock = FileLock(str(path), timeout=timeout)

    @contextmanager
    def held(self, wait: bool = True) -> Iterator[None]:
        """Hold the lock inside the block; waits up to `timeout` (or not at all), else `Busy`."""
        try:
            self._lock.acquire(timeout=self.timeout if wait else 0)
        except Timeout as e:
            raise Busy(str(self.path)) from e
        try:
            yield
        finally:
            self._lock.release()


class CrashPoints:
    """A test hook: with ASSISTANT_TEST_CRASH_AT=point (or point:n) in the environment, the
    process kills itself (SIGKILL, no cleanup) the n-th time it reaches that point."""

    def __init__(self, spec: str | None = None) -> None:
        spec = os.environ.get(CRASH_ENV, "") if spec is None else spec
        point, _, n = spec.partition(":")
        self.point = point.strip()
        self.times = int(n) if n.strip().isdigit() else 1
        self._reached = 0

    def reach(self, point: str) -> None:
        if not self.point or point != self.point:
            return
        self._reached += 1
        if self._reached >= self.times:
            os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))
