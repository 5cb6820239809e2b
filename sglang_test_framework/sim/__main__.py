"""``python -m sglang_test_framework.sim``: run the simulated SGLang server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence

from aiohttp import web

from .args import parse_config
from .config import SimConfig
from .routes import build_app
from .server import SimServer

__all__ = ["main"]


def _log_level(name: str) -> int:
    """``--log-level`` as a logging level; a name logging does not know means INFO (as before)."""
    level = logging.getLevelName(name.upper())
    return level if isinstance(level, int) else logging.INFO


async def _serve(config: SimConfig) -> None:
    logging.basicConfig(level=_log_level(config.log_level), format="%(asctime)s sim %(levelname)s: %(message)s")
    # The router probes workers with an HTTP/2 preface first; aiohttp would log each probe as an error.
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
    sim = SimServer(config)
    runner = web.AppRunner(build_app(sim), access_log=None, shutdown_timeout=1.0, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port, reuse_address=True)
    await site.start()
    logging.info(
        "simulated SGLang server on http://%s:%d (%s, KV %d tokens, max_running_requests %d, API key %s)",
        config.host,
        config.port,
        sim.profile.name,
        sim.engine.config.max_total_tokens,
        sim.engine.config.max_running_requests,
        "required" if config.api_key_value else "off",
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop_task = asyncio.create_task(sim.step_loop())
    start_task = asyncio.create_task(sim.start())
    try:
        await stop.wait()
    finally:
        for task in (loop_task, start_task):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await runner.cleanup()
        sim.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point (console script ``sglang-test-sim``): flag errors exit with code 2."""
    config = parse_config(argv if argv is not None else sys.argv[1:])
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(config))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
