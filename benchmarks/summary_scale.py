"""Collector scale: add_record cost, get_metrics() time and peak memory for large runs.

    python benchmarks/summary_scale.py [--records 1000000] [--also 200000] [--tokens 16]

Each size runs in a fresh process (peak RSS is per process): N synthetic records (a Poisson arrival
stream with dispatcher lag, some client queueing, log-normal TTFT, jittered ITL, one token per chunk,
1% failures) are fed through ``MetricsCollector.add_record`` with ``requests.jsonl`` in a temporary
directory, then ``get_metrics()`` is timed. Printed: add_record time per record, get_metrics time, the
process's peak RSS, the RSS right after the imports, and the bytes the collector's columns hold.
Figures only; nothing is asserted (targets: 1M records summarised in ≤ 2 s and ≤ 200 MB).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from sglang_test_framework.metrics.collector import MetricsCollector
from sglang_test_framework.records import RequestRecord

BATCH = 1_000
RATE_PER_S = 1_000.0
T0_NS = 10**12


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def synthetic_batch(
    rng: np.random.Generator, first: int, count: int, tokens: int, start_ns: int
) -> list[RequestRecord]:
    """``count`` records with realistic timestamps, the first scheduled right after ``start_ns``."""
    scheduled = start_ns + np.cumsum(rng.exponential(1e9 / RATE_PER_S, count)).astype(np.int64)
    arrival = scheduled + rng.exponential(50_000, count).astype(np.int64)
    queued = rng.random(count) < 0.1
    send = arrival + np.where(queued, rng.uniform(1e6, 50e6, count), rng.uniform(5e3, 30e3, count)).astype(np.int64)
    first_token = send + rng.lognormal(np.log(80e6), 0.4, count).astype(np.int64)
    itl = rng.gamma(8.0, 15e6 / 8.0, (count, tokens - 1)).astype(np.int64)
    chunks = np.concatenate([first_token[:, None], first_token[:, None] + np.cumsum(itl, axis=1)], axis=1)
    finish = chunks[:, -1] + 200_000
    ok = rng.random(count) >= 0.01
    prompt = rng.integers(100, 1000, count)
    cached = (prompt * rng.random(count)).astype(np.int64)
    out = []
    for i in range(count):
        chunk_ns = chunks[i].tolist() if ok[i] else []
        out.append(
            RequestRecord(
                f"req-{first + i}",
                prompt_len=int(prompt[i]),
                expected_output_len=tokens,
                scheduled_ns=int(scheduled[i]),
                arrival_ns=int(arrival[i]),
                send_ns=int(send[i]),
                first_token_ns=chunk_ns[0] if ok[i] else None,
                finish_ns=int(finish[i]),
                chunk_ns=chunk_ns,
                chunk_tokens=[1] * len(chunk_ns),
                output_tokens=len(chunk_ns),
                cached_tokens=int(cached[i]),
                success=bool(ok[i]),
                error=None if ok[i] else "HTTP 503: overloaded",
                error_type=None if ok[i] else "http",
                http_status=200 if ok[i] else 503,
                worker_id=f"worker-{i % 4}",
                group_id=int(first + i) % 100,
            )
        )
    return out


def measure(records: int, tokens: int) -> dict[str, float]:
    """One size, in this process."""
    rss_after_imports_mb = peak_rss_mb()
    rng = np.random.default_rng(0)
    add_s = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "requests.jsonl"
        collector = MetricsCollector(records_path=path)
        start_ns = T0_NS
        for first in range(0, records, BATCH):
            batch = synthetic_batch(rng, first, min(BATCH, records - first), tokens, start_ns)
            start_ns = batch[-1].scheduled_ns
            t = time.perf_counter()
            for record in batch:
                collector.add_record(record)
            add_s += time.perf_counter() - t
        del batch
        t = time.perf_counter()
        summary = collector.get_metrics()
        metrics_s = time.perf_counter() - t
        collector.close()
        file_mb = path.stat().st_size / 2**20
    return {
        "records": records,
        "add_record_us": add_s / records * 1e6,
        "get_metrics_s": metrics_s,
        "peak_rss_mb": peak_rss_mb(),
        "rss_after_imports_mb": rss_after_imports_mb,
        "columns_mb": collector.memory_bytes / 2**20,
        "jsonl_mb": file_mb,
        "completed": summary["completed"],
        "p99_itl_ms": summary["p99_itl"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="records of the main run")
    parser.add_argument("--also", type=int, nargs="*", default=[200_000], help="further sizes to run first")
    parser.add_argument("--tokens", type=int, default=16, help="output tokens per request")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(measure(args.child, args.tokens)))
        return
    print(
        f"{'records':>9} {'add_record':>12} {'get_metrics':>12} {'peak RSS':>10} {'after imports':>14} "
        f"{'columns':>9} {'jsonl':>9}"
    )
    for size in [*args.also, args.records]:
        argv = [sys.executable, __file__, "--child", str(size), "--tokens", str(args.tokens)]
        row = json.loads(subprocess.run(argv, check=True, capture_output=True, text=True).stdout)
        print(
            f"{size:>9,} {row['add_record_us']:>9.1f} µs {row['get_metrics_s']:>10.2f} s "
            f"{row['peak_rss_mb']:>7.0f} MB {row['rss_after_imports_mb']:>11.0f} MB "
            f"{row['columns_mb']:>6.0f} MB {row['jsonl_mb']:>6.0f} MB"
        )


if __name__ == "__main__":
    main()
