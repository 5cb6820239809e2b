"""The shard job, independent of any transport: a :class:`ShardSpec` (its requests, where to send them,
its share of the concurrency limit) is sent on the schedule ``start_ns + arrival_offset_s`` by one event
loop with its own :class:`RequestSender` (connection pool) and :func:`dispatch`; every record goes to a
callback as it finishes, and the run ends with the process's :class:`ClientProcessStats`.

The same class runs in the driver process (one-process client), in a local worker process
(:mod:`.worker`) or, with a remote transport, in an actor on another host.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from ..client.request_sender import RequestSender
from ..load.dispatch import DispatchStats, dispatch
from ..metrics.client_check import measure_client_process
from ..records import ClientProcessStats, Request, RequestRecord

__all__ = ["SenderSettings", "ShardRunner", "ShardSpec", "quiet_gc"]


@dataclass(frozen=True)
class SenderSettings:
    """Everything a :class:`RequestSender` of a shard needs (plain data: picklable, no secrets in repr)."""

    url: str
    """The full API URL (``api_url(base_url, api_type)``)."""
    api_type: str = "sglang"
    stream: bool = True
    model: str = "default"
    api_key: str | None = field(default=None, repr=False)
    timeout_s: float = 600.0
    idle_timeout_s: float = 120.0
    ignore_eos: bool = True
    extra_request_body: dict[str, Any] = field(default_factory=dict)

    def open(self) -> RequestSender:
        """A new sender (use it as ``async with``)."""
        return RequestSender(
            timeout_s=self.timeout_s,
            idle_timeout_s=self.idle_timeout_s,
            api_key=self.api_key,
            model=self.model,
            ignore_eos=self.ignore_eos,
            extra_request_body=self.extra_request_body,
        )


@dataclass
class ShardSpec:
    """One shard of a workload: its requests (in arrival order, chains whole), where they go, its share of
    ``max_concurrency`` and the drain timeout. The start time is given to :meth:`ShardRunner.run`."""

    index: int
    requests: list[Request]
    sender: SenderSettings
    max_concurrency: int | None = None
    drain_timeout_s: float | None = None


@contextlib.contextmanager
def quiet_gc() -> Iterator[None]:
    """During the load: objects that exist before it (requests, configs, modules) are frozen out of
    the collector, and young collections run less often. A full collection of ~150k objects paused the
    event loop for ~85 ms, which showed up as arrival lag and TTFT error (benchmarks/client_precision.py).
    Enter it before the schedule starts: it collects first."""
    gc.collect()
    gc.freeze()
    thresholds = gc.get_threshold()
    gc.set_threshold(max(thresholds[0], 50_000), *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


class ShardRunner:
    """``async with ShardRunner(spec) as shard: stats = await shard.run(start_ns, on_record)``.

    Entering opens the shard's own sender (or uses ``sender``, already open, e.g. the driver's warmed-up
    one). :attr:`stats` holds the live counters (arrived, waiting, in flight, completed, errors).
    """

    def __init__(self, spec: ShardSpec, sender: RequestSender | None = None) -> None:
        self.spec = spec
        self.stats = DispatchStats()
        self._sender = sender
        self._owned: RequestSender | None = None

    @property
    def sender(self) -> RequestSender:
        """The open sender (after entering)."""
        if self._sender is None:
            raise RuntimeError("use 'async with ShardRunner(spec)' before running it")
        return self._sender

    async def __aenter__(self) -> ShardRunner:
        if self._sender is None:
            self._owned = self.spec.sender.open()
            self._sender = await self._owned.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._owned is not None:
            await self._owned.__aexit__(exc_type, exc, tb)
            self._owned = None
            self._sender = None

    async def run(
        self, start_ns: int, on_record: Callable[[RequestRecord], None], measured: list[ClientProcessStats]
    ) -> None:
        """Send the shard's requests at ``start_ns + arrival_offset_s``; each record goes to ``on_record``.

        This process's CPU and wall time over the load are appended to ``measured`` when the load ends,
        also when it is cancelled (Ctrl-C: in-flight requests are recorded as cancelled first, then
        ``CancelledError`` propagates) — the caller keeps the list, so the figures survive either way.
        """
        spec, sender = self.spec, self.sender
        settings = spec.sender

        async def send(request: Request, scheduled_ns: int, arrival_ns: int) -> RequestRecord:
            return await sender.send_request(
                request,
                settings.url,
                settings.api_type,
                stream=settings.stream,
                scheduled_ns=scheduled_ns,
                arrival_ns=arrival_ns,
            )

        with measure_client_process(measured, lambda: self.stats.arrived, index=spec.index):
            await dispatch(
                spec.requests,
                send,
                max_concurrency=spec.max_concurrency,
                on_record=on_record,
                start_ns=start_ns,
                stats=self.stats,
                keep_records=False,  # the driver's collector streams them to disk and keeps only columns
                drain_timeout_s=spec.drain_timeout_s,
            )
