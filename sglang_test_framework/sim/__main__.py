"""``python -m sglang_test_framework.sim``: run the simulated SGLang server, or a fleet of them in one
process (``--workers N`` / ``--sim-fleet-spec``, sim/fleet.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Sequence

from .config import SimConfig
from .fleet import fleet_configs, serve

__all__ = ["main"]


def _log_level(name: str) -> int:
    """``--log-level`` as a logging level; a name logging does not know means INFO (as before)."""
    level = logging.getLevelName(name.upper())
    return level if isinstance(level, int) else logging.INFO


async def _serve(configs: Sequence[SimConfig]) -> None:
    logging.basicConfig(level=_log_level(configs[0].log_level), format="%(asctime)s sim %(levelname)s: %(message)s")
    # The router probes workers with an HTTP/2 preface first; aiohttp would log each probe as an error.
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
    await serve(configs)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point (console script ``sglang-test-sim``): flag errors exit with code 2."""
    configs = fleet_configs(argv if argv is not None else sys.argv[1:])
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(configs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
