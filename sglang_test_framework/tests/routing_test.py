"""Shim for the spec's import path: ``from sglang_test_framework.tests.routing_test import RoutingTest``.

``python -m sglang_test_framework.tests.routing_test --num-gpus 3 --policies cache_aware round_robin``
is the same as ``sglang-test routing …``. The scenario lives in :mod:`sglang_test_framework.scenarios.routing`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ..config.routing_config import RoutingConfig
from ..scenarios.routing import RoutingTest

__all__ = ["RoutingConfig", "RoutingTest", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``sglang-test routing`` with these arguments; returns the exit code."""
    from ..cli import main as cli_main

    return cli_main(["routing", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
