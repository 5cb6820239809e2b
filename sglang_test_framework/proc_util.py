"""Helpers for the child processes the package starts (servers, the client's worker processes)."""

from __future__ import annotations

import contextlib
import ctypes
import signal

__all__ = ["die_with_parent"]

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask the kernel to SIGTERM this (child) process when its parent dies, even by SIGKILL.

    Meant as ``preexec_fn``. PR_SET_PDEATHSIG fires when the *thread* that forked exits, so only pass it
    from the main thread. Best effort: where ``prctl`` is unavailable (not Linux) it does nothing.
    """
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
