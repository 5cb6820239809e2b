"""Shim for the spec's import path: ``from sglang_test_framework.tests.node_test import NodeTest``.

``python -m sglang_test_framework.tests.node_test --backend sim --request-rate 10 --num-prompts 200``
is the same as ``sglang-test node …``. The scenario lives in :mod:`sglang_test_framework.scenarios.node`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ..config.node_config import NodeConfig
from ..scenarios.node import NodeTest

__all__ = ["NodeConfig", "NodeTest", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``sglang-test node`` with these arguments; returns the exit code."""
    from ..cli import main as cli_main

    return cli_main(["node", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
