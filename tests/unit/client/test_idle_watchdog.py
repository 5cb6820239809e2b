"""The idle watchdog on a virtual clock: it fires only after ``idle_s`` with nothing read or received."""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast

import aiohttp
import pytest

from sglang_test_framework.client import request_sender
from sglang_test_framework.client.request_sender import _IdleTimeout, _IdleWatchdog, _Stream

S = 1_000_000_000


class FakeContent:
    def __init__(self) -> None:
        self.total_bytes = 0
        self.exception: BaseException | None = None

    def set_exception(self, exc: BaseException) -> None:
        self.exception = exc


async def test_fires_only_once_nothing_was_read_or_received_for_idle_s(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = SimpleNamespace(now=10 * S)
    monkeypatch.setattr(request_sender, "time", SimpleNamespace(monotonic_ns=lambda: clock.now))
    content = FakeContent()
    resp = SimpleNamespace(connection=None, content=content)
    state = _Stream()
    watchdog = _IdleWatchdog(cast(aiohttp.ClientResponse, resp), state, 1.0)

    def check() -> None:  # what the timer does, at the virtual time
        watchdog.cancel()
        watchdog._check()

    try:
        assert state.last_read_ns == 10 * S  # the headers count as received

        clock.now = 10 * S + S // 2
        state.last_read_ns = clock.now  # the reader took a chunk
        clock.now = 11 * S
        check()  # 0.5 s since the last read
        assert content.exception is None
        content.total_bytes = 50  # received and read at once
        state.last_read_ns = clock.now

        clock.now = 12 * S
        content.total_bytes = 100  # received but not yet read (a busy loop)
        check()
        assert content.exception is None

        clock.now = 12 * S + S // 2
        check()  # nothing new, but 1 s has not passed since the bytes were seen
        assert content.exception is None
        clock.now = 13 * S
        check()
        assert isinstance(content.exception, _IdleTimeout)
    finally:
        watchdog.cancel()
