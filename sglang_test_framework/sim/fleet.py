"""A fleet of simulated servers in one process: N independent workers on N ports, one event loop.

Each worker is exactly what a single ``python -m sglang_test_framework.sim`` runs: its own
:class:`SimServer` (engine, radix cache, metrics, faults, worker id, ground-truth log), its own aiohttp
application and listening socket, its own step loop. They share only the process, the event loop and
the interpreter, so N workers cost one Python runtime instead of N (about 170 MB each), and an idle
worker costs nothing (its step loop sleeps until a request arrives).

Differences from N processes, by design:

- A crash fault (``--sim-crash-after-s`` / ``--sim-crash-after-requests``) kills only its worker: its
  connections are aborted and its socket closed (clients see a reset, as with a dead process), the
  process and the other workers go on.
- The workers share one CPU core, so heavy load on many of them at once stretches every step loop (the
  sim resynchronises late steps; ``--sim-slowdown`` style jitter is unaffected). Use several fleet
  processes (``sim_workers_per_process``) when the fleet is busy.

Command lines (``sglang-test-sim``):

- ``--workers N`` with the usual flags: N workers on ``--port`` … ``--port``+N−1; worker ids
  ``<--sim-worker-id>-<i>`` (default ``host:port``); a ground-truth log per worker,
  ``<stem>.worker_<i><suffix>``.
- ``--sim-fleet-spec JSON``: a JSON list of complete per-worker argv lists (what ServerManager passes);
  each is parsed like a single server's command line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web

from .args import parse_config
from .config import SimConfig
from .routes import build_app
from .server import SimServer

__all__ = ["FLEET_SPEC_FLAG", "WORKERS_FLAG", "SimWorker", "fleet_configs", "serve"]

WORKERS_FLAG = "--workers"
FLEET_SPEC_FLAG = "--sim-fleet-spec"

logger = logging.getLogger(__name__)


def _usage_error(message: str) -> SystemExit:
    print(f"sglang-test-sim: error: {message}", file=sys.stderr)
    return SystemExit(2)


def _pop_flag(argv: list[str], flag: str) -> str | None:
    """Remove ``flag VALUE`` / ``flag=VALUE`` from ``argv``; its value, or None when absent."""
    for i, arg in enumerate(argv):
        if arg == flag:
            if i + 1 >= len(argv):
                raise _usage_error(f"{flag} needs a value")
            value = argv[i + 1]
            del argv[i : i + 2]
            return value
        if arg.startswith(flag + "="):
            del argv[i]
            return arg.split("=", 1)[1]
    return None


def _set_flag(argv: list[str], flag: str, value: str) -> list[str]:
    out = list(argv)
    _pop_flag(out, flag)
    return [*out, flag, value]


def _truth_path(path: str, index: int) -> str:
    p = Path(path)
    return str(p.with_name(f"{p.stem}.worker_{index}{p.suffix}"))


def fleet_configs(argv: Sequence[str]) -> list[SimConfig]:
    """The configs of the workers ``argv`` asks for: one without fleet flags, N with ``--workers N``,
    one per entry of ``--sim-fleet-spec``. Errors print one line and exit with code 2."""
    args = list(argv)
    spec = _pop_flag(args, FLEET_SPEC_FLAG)
    workers = _pop_flag(args, WORKERS_FLAG)
    if spec is not None:
        if workers is not None or args:
            raise _usage_error(f"{FLEET_SPEC_FLAG} holds every worker's flags; give no other flag with it")
        try:
            entries = json.loads(spec)
        except ValueError as exc:
            raise _usage_error(f"{FLEET_SPEC_FLAG}: not JSON ({exc}); pass a list of argv lists") from None
        if not isinstance(entries, list) or not entries or not all(isinstance(e, list) for e in entries):
            raise _usage_error(f"{FLEET_SPEC_FLAG}: pass a non-empty JSON list of argv lists")
        return _unique([parse_config([str(a) for a in entry]) for entry in entries])
    if workers is None:
        return [parse_config(args)]
    try:
        n = int(workers)
    except ValueError:
        n = 0
    if not 1 <= n <= 4096:
        raise _usage_error(f"{WORKERS_FLAG} {workers}: give a whole number of workers from 1 to 4096")
    base = parse_config(args)
    if base.port + n - 1 > 65535:
        raise _usage_error(f"--port {base.port} + {WORKERS_FLAG} {n}: ports past 65535; lower --port")
    configs = []
    for i in range(n):
        one = _set_flag(args, "--port", str(base.port + i))
        if base.sim_worker_id is not None:
            one = _set_flag(one, "--sim-worker-id", f"{base.sim_worker_id}-{i}")
        if base.sim_ground_truth_log is not None and n > 1:
            one = _set_flag(one, "--sim-ground-truth-log", _truth_path(str(base.sim_ground_truth_log), i))
        configs.append(parse_config(one))
    return _unique(configs)


def _unique(configs: list[SimConfig]) -> list[SimConfig]:
    seen: dict[tuple[str, int], int] = {}
    for i, cfg in enumerate(configs):
        key = (cfg.host, cfg.port)
        if key in seen:
            raise _usage_error(f"workers {seen[key]} and {i} both listen on {cfg.host}:{cfg.port}; give each a port")
        seen[key] = i
    return configs


class SimWorker:
    """One simulated server of the fleet: its SimServer, web app, socket and step loop."""

    def __init__(self, config: SimConfig, in_fleet: bool = True) -> None:
        self.config = config
        self.sim = SimServer(config)
        if in_fleet:  # alone, a crash fault exits the process (as a real server's crash would)
            self.sim.crash_hook = self.crash
        self.runner = web.AppRunner(build_app(self.sim), access_log=None, shutdown_timeout=1.0, handle_signals=False)
        self.tasks: list[asyncio.Task[None]] = []
        self.crashed = False
        self._closing: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Listen and start the step loop and the (possibly delayed) readiness."""
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.config.host, self.config.port, reuse_address=True)
        await site.start()
        self.tasks = [asyncio.create_task(self.sim.step_loop()), asyncio.create_task(self.sim.start())]
        logger.info(
            "simulated SGLang server %s on http://%s:%d (%s, KV %d tokens, max_running_requests %d, API key %s)",
            self.sim.worker_id,
            self.config.host,
            self.config.port,
            self.sim.profile.name,
            self.sim.engine.config.max_total_tokens,
            self.sim.engine.config.max_running_requests,
            "required" if self.config.api_key_value else "off",
        )

    def crash(self) -> None:
        """Die like a killed process: abort every connection, stop listening, stop the step loop."""
        if self.crashed:
            return
        self.crashed = True
        logger.warning("worker %s crashed (injected fault)", self.sim.worker_id)
        server = self.runner.server
        for handler in list(server.connections) if server is not None else []:
            if handler.transport is not None:
                handler.transport.abort()
        for task in self.tasks:
            task.cancel()
        self._closing = asyncio.get_running_loop().create_task(self.stop())

    async def stop(self) -> None:
        """Stop listening, cancel the loops, close the ground-truth log."""
        for task in self.tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.runner.cleanup()
        self.sim.close()


async def serve(configs: Sequence[SimConfig]) -> None:
    """Run every worker of ``configs`` until SIGTERM / SIGINT, then stop them all."""
    workers = [SimWorker(cfg, in_fleet=len(configs) > 1) for cfg in configs]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    started: list[SimWorker] = []
    try:
        for worker in workers:
            await worker.start()
            started.append(worker)
        if len(workers) > 1:
            logger.info("fleet of %d simulated servers in one process is up", len(workers))
        await stop.wait()
    finally:
        await asyncio.gather(*(w.stop() for w in started if not w.crashed), return_exceptions=True)
        for w in started:
            if w.crashed and w._closing is not None:
                with contextlib.suppress(Exception):
                    await w._closing
