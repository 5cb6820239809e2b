"""A local client worker process: ``python -m sglang_test_framework.shards.worker``.

Started by :mod:`.pool` (never by hand). It reads its :class:`~.runner.ShardSpec` from stdin, opens its
own sender (event loop and connection pool), says :class:`~.wire.Ready`, waits for
:class:`~.wire.Start`, runs the shard and streams its records back on the original stdout. Anything
printed goes to stderr (the worker's log), never into the frames.

It stops on :class:`~.wire.Stop`, on end of file on stdin (the driver is gone) and on SIGTERM (also sent
by the kernel when the driver dies): the load is cancelled, in-flight requests are recorded as
cancelled and sent back, then :class:`~.wire.Done` with the process's CPU and wall time. It ignores
SIGINT: a Ctrl-C is the driver's to handle.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import stat
import sys

from ..records import ClientProcessStats, RequestRecord
from .runner import ShardRunner, ShardSpec, quiet_gc
from .wire import HEARTBEAT_S, Counters, Done, Failed, Ready, Records, Start, encode, read_message

__all__ = ["main"]


class _Outbox:
    """Records finished in one event-loop turn go out in one frame (fewer writes and pickles)."""

    def __init__(self, writer: asyncio.StreamWriter, shard: ShardRunner) -> None:
        self._writer = writer
        self._shard = shard
        self._records: list[RequestRecord] = []
        self._scheduled = False

    def counters(self) -> Counters:
        s = self._shard.stats
        return Counters(arrived=s.arrived, waiting=s.waiting, in_flight=s.in_flight)

    def add(self, record: RequestRecord) -> None:
        self._records.append(record)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        if self._records:
            records, self._records = self._records, []
            self.send(Records(records, self.counters()))

    def send(self, message: object) -> None:
        if not self._writer.is_closing():
            self._writer.write(encode(message))

    async def heartbeat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            self.send(self.counters())


async def _stop_on_request(reader: asyncio.StreamReader, task: asyncio.Task[None]) -> None:
    """Cancel the load on :class:`~.wire.Stop` or end of file (any message after Start means stop)."""
    await read_message(reader)
    task.cancel()


async def _run_loaded(shard: ShardRunner, reader: asyncio.StreamReader, outbox: _Outbox, start_ns: int) -> None:
    loop = asyncio.get_running_loop()
    measured: list[ClientProcessStats] = []
    task = asyncio.create_task(shard.run(start_ns, outbox.add, measured))
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    helpers = [asyncio.create_task(_stop_on_request(reader, task)), asyncio.create_task(outbox.heartbeat())]
    try:
        await task
    except asyncio.CancelledError:
        if not task.cancelled():  # we ourselves were cancelled, not the load
            raise
    except Exception as exc:  # the shard's load itself raised: say why, then end normally
        outbox.flush()
        outbox.send(Failed(f"{type(exc).__name__}: {exc}"))
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        for helper in helpers:
            helper.cancel()
        await asyncio.gather(*helpers, return_exceptions=True)
    outbox.flush()
    outbox.send(Done(measured[-1] if measured else None))


async def _serve(out_fd: int) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
    out_pipe = os.fdopen(out_fd, "wb", buffering=0)
    transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, out_pipe)
    writer = asyncio.StreamWriter(transport, protocol, None, loop)
    try:
        spec = await read_message(reader)
        if not isinstance(spec, ShardSpec):
            raise SystemExit(f"expected a ShardSpec on stdin, got {type(spec).__name__}")
        async with ShardRunner(spec) as shard:
            outbox = _Outbox(writer, shard)
            with quiet_gc():  # collects before Ready: its pause comes before the schedule starts
                outbox.send(Ready(os.getpid()))
                start = await read_message(reader)
                if isinstance(start, Start):
                    await _run_loaded(shard, reader, outbox, start.start_ns)
                else:  # stopped (or the driver went away) before the load started
                    outbox.send(Done(None))
        with contextlib.suppress(ConnectionError):
            await writer.drain()
    finally:
        writer.close()


def _is_pipe(fd: int) -> bool:
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def main() -> int:
    """Run one shard; exit code 0 when the load ran (whatever its requests did), 2 when not started
    by the runner (stdin and stdout must be pipes to the driver)."""
    if not (_is_pipe(0) and _is_pipe(1)):
        print(
            "this is a client worker process: the runner starts it with pipes on stdin and stdout "
            "(set client_processes instead of running it)",
            file=sys.stderr,
        )
        return 2
    out_fd = os.dup(1)
    os.dup2(2, 1)  # stray prints go to the log, never into the frames
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        asyncio.run(_serve(out_fd))
    except BrokenPipeError:  # the driver is gone: nobody is left to read our records
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
