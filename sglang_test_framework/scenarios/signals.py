"""Run a scenario's coroutine so that SIGTERM and Ctrl-C always stop it cleanly.

The old way (SIGTERM re-sent as SIGINT) failed whenever SIGINT was ignored — every job started with
``cmd &`` from a script inherits SIG_IGN for SIGINT — and the run had to be SIGKILLed. Here the event
loop's own signal handlers cancel the main task directly: the scenario's ``finally`` blocks and context
managers then stop dispatch, mark in-flight requests cancelled, write the partial results and stop every
process we started. A second signal escalates: every process we started is SIGKILLed at once and the
interpreter exits with 128 + the signal number.

SIGTERM is always handled. SIGINT is handled unless it was inherited as ignored (the POSIX convention
for background jobs, which must not stop on a terminal's Ctrl-C).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from ..errors import RunInterrupted

__all__ = ["run_with_signals"]

T = TypeVar("T")

logger = logging.getLogger(__name__)


def _handled_signals() -> list[signal.Signals]:
    handled = [signal.SIGTERM]
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        handled.append(signal.SIGINT)
    return handled


async def _run_guarded(main: Coroutine[Any, Any, T], escalate: Callable[[], None]) -> T:
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(main)
    received: list[signal.Signals] = []

    def on_signal(sig: signal.Signals) -> None:
        received.append(sig)
        if len(received) == 1:
            print(
                f"\n{sig.name}: stopping the run (a second signal kills everything at once)…",
                file=sys.stderr,
                flush=True,
            )
            task.cancel()
            return
        print(f"\n{sig.name} again: killing every process we started", file=sys.stderr, flush=True)
        escalate()
        os._exit(128 + int(sig))

    handled = _handled_signals()
    for sig in handled:
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        return await task
    except asyncio.CancelledError:
        if received:
            raise RunInterrupted(received[0].name) from None
        raise
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)


def run_with_signals(main: Coroutine[Any, Any, T], escalate: Callable[[], None] | None = None) -> T:
    """``asyncio.run(main)`` where SIGTERM / SIGINT cancel ``main`` and raise :class:`RunInterrupted`.

    Args:
        main: The scenario coroutine; it sees a ``CancelledError`` on the first signal and must clean up.
        escalate: Called on the second signal before the process exits (SIGKILL what we started).

    Outside the main thread (no signal handlers can be installed there) it is plain ``asyncio.run``.
    """
    if threading.current_thread() is not threading.main_thread():
        return asyncio.run(main)
    return asyncio.run(_run_guarded(main, escalate or (lambda: None)))
