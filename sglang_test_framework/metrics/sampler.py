"""Background sampling of server metrics, process memory and client counters during a run."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import aiohttp

from .prometheus import Sample, ScrapeTarget, scrape

__all__ = ["CLIENT_TARGET", "ClientSampler", "ScrapeFailure", "TimeSeriesSampler"]

ClientSampler = Callable[[], Mapping[str, float]]
CLIENT_TARGET = "client"


@dataclass(frozen=True)
class ScrapeFailure:
    """A sample that could not be taken: when (``time.monotonic_ns()``), of what, and why."""

    t_ns: int
    target: str
    error: str


class TimeSeriesSampler:
    """Samples every target at a fixed interval on the running event loop until :meth:`stop`.

    Ticks are scheduled at ``start + k · interval`` (no drift); a tick that falls behind (slow scrape)
    is skipped rather than bunched up. Failures are stored in :attr:`failures`, never raised.
    """

    def __init__(self) -> None:
        self.samples: list[Sample] = []
        self.failures: list[ScrapeFailure] = []
        self._task: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None

    @property
    def running(self) -> bool:
        """Whether sampling is in progress."""
        return self._task is not None

    async def start(
        self, targets: Sequence[ScrapeTarget], interval_s: float = 1.0, client_sampler: ClientSampler | None = None
    ) -> None:
        """Start sampling in the background (the first sample is taken at once).

        Raises:
            ValueError: ``interval_s`` is not positive.
            RuntimeError: sampling is already running.
        """
        if interval_s <= 0:
            raise ValueError(f"interval_s: must be > 0, got {interval_s}")
        if self._task is not None:
            raise RuntimeError("time series collection already running; call stop_collection() first")
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._run(list(targets), interval_s, client_sampler, self._stop))

    async def stop(self) -> None:
        """Take one last sample and stop. A no-op when not running."""
        task, stop = self._task, self._stop
        if task is None or stop is None:
            return
        stop.set()
        try:
            await task
        except asyncio.CancelledError:
            task.cancel()
            raise
        finally:
            self._task = self._stop = None

    async def _run(
        self,
        targets: list[ScrapeTarget],
        interval_s: float,
        client_sampler: ClientSampler | None,
        stop: asyncio.Event,
    ) -> None:
        async with aiohttp.ClientSession() as session:
            next_s = time.monotonic()
            while not stop.is_set():
                await self._sample_once(session, targets, client_sampler)
                next_s = max(next_s + interval_s, time.monotonic())
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=next_s - time.monotonic())
            await self._sample_once(session, targets, client_sampler)

    async def _sample_once(
        self, session: aiohttp.ClientSession, targets: list[ScrapeTarget], client_sampler: ClientSampler | None
    ) -> None:
        results = await asyncio.gather(*(scrape(session, t) for t in targets))
        for target, (samples, error) in zip(targets, results, strict=True):
            self.samples.extend(samples)
            if error is not None:
                self.failures.append(ScrapeFailure(time.monotonic_ns(), target.name, error))
        if client_sampler is not None:
            self._sample_client(client_sampler)

    def _sample_client(self, client_sampler: ClientSampler) -> None:
        t_ns = time.monotonic_ns()
        try:
            values = dict(client_sampler())
        except Exception as exc:  # a broken callback must not end the time series of the servers
            self.failures.append(ScrapeFailure(t_ns, CLIENT_TARGET, f"{type(exc).__name__}: {exc}"))
            return
        self.samples.extend(Sample(t_ns, CLIENT_TARGET, name, "", float(v)) for name, v in values.items())
