"""Client cost and accuracy: CPU time per request of the measuring process, and TTFT error against the
simulator's ground-truth log, at 50 and 200 req/s.

    python benchmarks/client_accuracy.py [--rates 50 200] [--num-prompts 1000]

The simulator runs in its own process; this process runs only the framework (dispatch, sender,
collector), so its CPU time is the client's cost. TTFT error = client TTFT − (first-token write time −
arrival at the server) per request, from the truth log; it includes loopback HTTP and the client's
event-loop latency.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from sglang_test_framework.config.node_config import NodeConfig
from sglang_test_framework.scenarios.node import NodeTest


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(rate: float, num: int, out: Path) -> None:
    cfg = NodeConfig(
        model_path="meta-llama/Meta-Llama-3-8B-Instruct",
        backend="sim",
        port=0,
        dataset_name="random",
        random_input_len=256,
        random_output_len=64,
        random_range_ratio=1.0,
        num_prompts=num,
        request_rate=rate,
        record_ground_truth=True,
        output_dir=out,
        progress=False,
        collect_timeseries=False,
        write_plots=False,
        warmup_requests=1,
    )
    c0, t0 = cpu_s(), time.monotonic()
    results = NodeTest(cfg).run()
    cpu, wall = cpu_s() - c0, time.monotonic() - t0
    truth = {r["rid"]: r for r in map(json.loads, (out / "sim_ground_truth.jsonl").read_text().splitlines())}
    err = np.array(
        [
            (
                rec.first_token_ns
                - rec.send_ns
                - (truth[rec.request_id]["first_token_ns"] - truth[rec.request_id]["arrival_ns"])
            )
            / 1e6
            for rec in results.records
            if rec.success and rec.request_id in truth and rec.first_token_ns is not None
        ]
    )
    tokens_match = all(rec.output_tokens == truth[rec.request_id]["completion_tokens"] for rec in results.records)
    s = results.summary
    print(
        f"rate {rate:5.0f} req/s: {s['completed']}/{num} ok, achieved {s['request_throughput']:.1f} req/s, "
        f"{s['output_throughput']:,.0f} tok/s | client CPU {cpu / num * 1e3:.2f} ms/request "
        f"({cpu:.1f}s CPU in {wall:.1f}s, whole run incl. startup) | TTFT error vs truth: "
        f"median {np.median(err):.2f} ms, p90 {np.percentile(err, 90):.2f} ms, p99 {np.percentile(err, 99):.2f} ms, "
        f"max {err.max():.2f} ms | token counts exact: {tokens_match}"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--rates", nargs="+", type=float, default=[50.0, 200.0])
    p.add_argument("--num-prompts", type=int, default=1000)
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for rate in a.rates:
            run(rate, a.num_prompts, Path(tmp) / f"rate_{rate:g}")


if __name__ == "__main__":
    main()
