"""Run a read as an unprivileged user, so file modes apply even when the tests run as root."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

import pytest

NOBODY = 65534
T = TypeVar("T")


def as_nobody(read: Callable[[], T]) -> T:
    """`read()`, as the user nobody when this process is root (root reads any file)."""
    if os.geteuid() != 0:
        return read()
    try:
        os.seteuid(NOBODY)
    except PermissionError:
        pytest.skip("running as root without the right to act as another user")
    try:
        return read()
    finally:
        os.seteuid(0)
