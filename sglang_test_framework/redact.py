"""Keeping secrets (API keys) out of everything we print or write: logs, argv shown in logs, run files.

Config models dump their ``api_key`` as ``"***"`` themselves; this module covers command lines.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["REDACTED", "SECRET_FLAGS", "redact_argv"]

REDACTED = "***"
"""What a secret is replaced with."""

SECRET_FLAGS = ("--api-key", "--admin-api-key", "--router-api-key")
"""Command-line flags whose value is a secret (ours, SGLang's and the routers')."""


def redact_argv(argv: Sequence[str]) -> list[str]:
    """``argv`` with the value of every secret flag (``--api-key X`` or ``--api-key=X``) replaced by ``***``."""
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            out.append(REDACTED)
            hide_next = False
            continue
        flag, sep, _ = arg.partition("=")
        if flag in SECRET_FLAGS:
            if sep:
                out.append(f"{flag}={REDACTED}")
            else:
                out.append(arg)
                hide_next = True
            continue
        out.append(arg)
    return out
