"""The local transport of a multi-process client: one worker process per shard on this machine.

``async with LocalShardPool(specs, log_dir) as pool: processes = await pool.run(start_ns, on_record,
stats)``. Entering spawns every worker (``python -m sglang_test_framework.shards.worker``: a fresh
interpreter, never a fork of this event loop; its own session, so a terminal's Ctrl-C reaches only the
driver; stderr to ``log_dir/client-<i>.log``; SIGTERM from the kernel if the driver dies), sends each its
:class:`~.runner.ShardSpec` and waits until all have their sender open. :meth:`LocalShardPool.run` then
gives them one start time on CLOCK_MONOTONIC and hands every record to ``on_record`` as it arrives,
in the driver's event loop, so the driver's one collector writes one ``requests.jsonl``.

Nothing is lost and nothing hangs:

- cancelled (Ctrl-C): every worker is told to stop, its in-flight requests come back recorded as
  cancelled, then CancelledError propagates; a worker that does not finish within
  :data:`STOP_TIMEOUT_S` is killed (its requests already due are then recorded as cancelled here);
- a worker that dies (or whose load raised): each of its requests with no record yet becomes a failed
  record (``error_type='client'``) naming the process and how it ended, and the run goes on;
- leaving the pool stops every worker still running: end of input → SIGTERM → SIGKILL, each reaped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ..errors import RunError
from ..load.dispatch import DispatchStats
from ..proc_util import die_with_parent
from ..records import RequestRecord
from .pool_base import ShardMember, ShardPoolBase, counting
from .runner import ShardSpec
from .wire import Counters, Done, Failed, Ready, Records, Start, Stop, encode, read_message

__all__ = ["READY_TIMEOUT_S", "START_LEAD_S", "STOP_TIMEOUT_S", "LocalShardPool"]

logger = logging.getLogger(__name__)

WORKER_MODULE = "sglang_test_framework.shards.worker"
READY_TIMEOUT_S = 120.0
"""How long the workers may take to start (import, open their sender) before the run fails."""
START_LEAD_S = 0.05
"""The schedule starts this long after the start is sent, so every worker has it before its first
deadline (the message takes microseconds; a busy machine may delay a worker's loop by milliseconds)."""
STOP_TIMEOUT_S = 10.0
"""How long a stopped worker may take to send back its cancelled requests before it is killed."""


def _how_it_ended(returncode: int | None) -> str:
    if returncode is None:
        return "stopped answering"
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-returncode).name}"
    return f"exited with code {returncode}"


def _log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@dataclass
class _Worker(ShardMember):
    proc: asyncio.subprocess.Process
    log_path: Path

    @property
    def name(self) -> str:
        return f"client process {self.spec.index} (pid {self.proc.pid})"

    async def send(self, message: object) -> None:
        """Write one frame to the worker; a worker that is gone is not an error here (its pump sees it)."""
        stdin = self.proc.stdin
        if stdin is None or stdin.is_closing():
            return
        with contextlib.suppress(ConnectionError, RuntimeError):
            stdin.write(encode(message))
            await stdin.drain()


class LocalShardPool(ShardPoolBase[_Worker]):
    """N local worker processes, one per :class:`ShardSpec` (see the module docstring)."""

    def __init__(self, specs: Sequence[ShardSpec], log_dir: Path) -> None:
        super().__init__()
        self._specs = list(specs)
        self._log_dir = log_dir

    @property
    def pids(self) -> list[int]:
        """Process ids of the workers started."""
        return [w.proc.pid for w in self._members]

    async def _spawn(self, spec: ShardSpec) -> _Worker:
        log_path = self._log_dir / f"client-{spec.index}.log"
        log: IO[bytes]
        with log_path.open("ab") as log:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                WORKER_MODULE,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                start_new_session=True,
                # PR_SET_PDEATHSIG fires when the forking *thread* exits: only from the main thread
                preexec_fn=die_with_parent if threading.current_thread() is threading.main_thread() else None,
            )
        worker = _Worker(proc, log_path, spec=spec, outstanding={r.request_id: r for r in spec.requests})
        self._members.append(worker)
        await worker.send(spec)
        return worker

    async def start(self) -> None:
        """Spawn every worker and wait until each is ready.

        Raises:
            RunError: If a worker exits or stays silent for :data:`READY_TIMEOUT_S` before it is ready.
        """
        self._log_dir.mkdir(parents=True, exist_ok=True)
        workers = [await self._spawn(spec) for spec in self._specs]
        await asyncio.gather(*(self._wait_ready(w) for w in workers))

    async def _wait_ready(self, worker: _Worker) -> None:
        assert worker.proc.stdout is not None
        try:
            message = await asyncio.wait_for(read_message(worker.proc.stdout), READY_TIMEOUT_S)
        except asyncio.TimeoutError:
            message = None
        if not isinstance(message, Ready):
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(worker.proc.wait(), 1.0)
            raise RunError(
                f"{worker.name} {_how_it_ended(worker.proc.returncode)} before it was ready; "
                f"its log ({worker.log_path}) ends with:\n{_log_tail(worker.log_path)}"
            )

    async def _send_start(self, start_ns: int) -> None:
        for worker in self._members:
            await worker.send(Start(start_ns))

    async def _stop(self, pumps: list[asyncio.Task[None]]) -> None:
        """Tell every worker to stop and collect what they send back; kill those that do not finish."""
        self._stopping_ns = time.monotonic_ns()
        for worker in self._members:
            await worker.send(Stop())
        _, late = await asyncio.wait(pumps, timeout=STOP_TIMEOUT_S)
        if late:
            for worker in self._members:
                if worker.proc.returncode is None and not worker.done:
                    logger.warning("%s did not stop within %g s; killing it", worker.name, STOP_TIMEOUT_S)
                    _signal(worker, signal.SIGKILL)
            await asyncio.wait(late)

    async def _pump(
        self, worker: _Worker, start_ns: int, on_record: Callable[[RequestRecord], None], stats: DispatchStats
    ) -> None:
        """Read the worker's messages until it closes its output; then account for what it left."""
        reader = worker.proc.stdout
        assert reader is not None
        deliver = counting(on_record, stats)

        try:
            while (message := await read_message(reader)) is not None:
                if isinstance(message, Records):
                    for record in message.records:
                        worker.outstanding.pop(record.request_id, None)
                        deliver(record)
                    worker.counters = message.counters
                    self._sum_counters(stats)
                elif isinstance(message, Counters):
                    worker.counters = message
                    self._sum_counters(stats)
                elif isinstance(message, Failed):
                    worker.error = f"failed ({message.error})"
                    logger.error("%s: its load failed: %s", worker.name, message.error)
                elif isinstance(message, Done):
                    worker.stats, worker.done = message.stats, True
        except Exception as exc:  # a torn or foreign frame: nothing more it sends can be trusted
            worker.error = f"sent an unreadable message ({type(exc).__name__}: {exc})"
            logger.error("%s %s; stopping it", worker.name, worker.error)
            _signal(worker, signal.SIGKILL)
        await worker.proc.wait()
        worker.counters = Counters(arrived=worker.counters.arrived)
        self._sum_counters(stats)
        if worker.outstanding and (not worker.done or worker.error is not None):
            for record in self._worker_left_over(worker, start_ns):
                deliver(record)

    def _worker_left_over(self, worker: _Worker, start_ns: int) -> list[RequestRecord]:
        """Records for the requests a worker that died (or failed) left without one.

        After a Ctrl-C only the requests already due are recorded (as cancelled, as one process does);
        otherwise every one becomes a failed ``client`` record naming the process and how it ended.
        """
        how = worker.error or _how_it_ended(worker.proc.returncode)
        if not worker.done:
            logger.error(
                "%s %s with %d requests unfinished; they are recorded as failed. Its log (%s) ends with:\n%s",
                worker.name,
                how,
                len(worker.outstanding),
                worker.log_path,
                _log_tail(worker.log_path),
            )
        return self._left_over(worker, start_ns, how, f"{worker.name} {how}")

    async def close(self) -> None:
        """Stop every worker still running (end of input, then SIGTERM, then SIGKILL) and reap it."""
        for worker in self._members:
            if worker.proc.stdin is not None and not worker.proc.stdin.is_closing():
                worker.proc.stdin.close()
        for worker in self._members:
            for sig in (None, signal.SIGTERM, signal.SIGKILL):
                if sig is not None:
                    _signal(worker, sig)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(worker.proc.wait(), STOP_TIMEOUT_S)
                    break


def _signal(worker: _Worker, sig: signal.Signals) -> None:
    if worker.proc.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            worker.proc.send_signal(sig)
