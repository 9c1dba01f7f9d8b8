"""Helpers for the browser tests: load the chat window, serve it here, watch outbound sockets."""

from __future__ import annotations

import importlib
import ipaddress
import socket
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def load_ui() -> ModuleType:
    """The chat window's module (the package's, as `assistant ui` serves it)."""
    return importlib.import_module("assistant.web.app")


@contextmanager
def serving(assistant: Any) -> Iterator[tuple[str, list[str]]]:
    """The real app for this Assistant on a free 127.0.0.1 port: its URL, and the outbound
    connections this process makes meanwhile."""
    ui = load_ui()
    with outbound_watch() as outbound:
        app = ui.build_app(assistant)
        port = free_port()
        ui.launch(app, assistant.settings, "127.0.0.1", port, prevent_thread_lock=True, quiet=True)
        url = f"http://127.0.0.1:{port}/"
        try:
            wait_until_up(url)
            yield url, outbound
        finally:
            app.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_up(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _is_local(host: Any) -> bool:
    if not isinstance(host, str):
        return True  # AF_UNIX paths and the like
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


@contextmanager
def outbound_watch() -> Iterator[list[str]]:
    """Record every connection or name lookup this process makes to a non-loopback host."""
    seen: list[str] = []
    connect, connect_ex, getaddrinfo = (
        socket.socket.connect,
        socket.socket.connect_ex,
        socket.getaddrinfo,
    )

    def record(address: Any) -> None:
        host = address[0] if isinstance(address, tuple) else address
        if not _is_local(host):
            seen.append(str(address))

    def watched_connect(self: socket.socket, address: Any) -> None:
        record(address)
        return connect(self, address)

    def watched_connect_ex(self: socket.socket, address: Any) -> int:
        record(address)
        return connect_ex(self, address)

    def watched_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        record((host.decode() if isinstance(host, bytes) else host,))
        return getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = watched_connect  # type: ignore[method-assign, assignment]
    socket.socket.connect_ex = watched_connect_ex  # type: ignore[method-assign, assignment]
    socket.getaddrinfo = watched_getaddrinfo
    try:
        yield seen
    finally:
        socket.socket.connect = connect  # type: ignore[method-assign]
        socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
        socket.getaddrinfo = getaddrinfo
