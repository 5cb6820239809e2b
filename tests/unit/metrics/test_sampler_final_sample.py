"""stop_collection() takes one last sample (no sockets: only the client sampler is sampled)."""

from __future__ import annotations

import asyncio

from sglang_test_framework.metrics.collector import MetricsCollector


async def test_stop_takes_one_last_sample() -> None:
    collector = MetricsCollector()
    calls: list[int] = []
    first_taken = asyncio.Event()

    def sampler() -> dict[str, float]:
        calls.append(1)
        first_taken.set()
        return {"client_in_flight": float(len(calls))}

    await collector.start_collection([], interval_s=3600.0, client_sampler=sampler)
    await first_taken.wait()  # the first sample is taken as soon as the sampling task runs
    await collector.stop_collection()
    assert len(calls) == 2  # the first tick and the final sample; the next tick was an hour away
    assert collector.timeseries_dataframe()["value"].tolist() == [1.0, 2.0]
