"""Memory and CPU of N simulated workers: one fleet process vs one process per worker.

    python benchmarks/sim_fleet_footprint.py [--workers 32] [--prompts 320] [--rate 40] [--policy round_robin]

Runs the same seeded RoutingTest (shared-prefix workload, N sim workers behind the real router) twice:
``sim_workers_per_process = N`` (one process) and ``= 1`` (N processes). A sampler thread reads every
sim process of this run (children whose command line runs ``sglang_test_framework.sim``) every 0.5 s:

- RSS: the largest sum of resident memory over the sim processes seen during the run (peak of the sum);
- CPU: user + system seconds of the sim processes, last sample before they stopped (start-up included,
  so the N-process side pays N interpreter start-ups and imports);
- startup: the workers' start-up time as RoutingTest reports it, and the wall time of the whole test.

One markdown row per mode. Numbers from a busy shared machine are indicative only.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import psutil

from sglang_test_framework.config.routing_config import RoutingConfig
from sglang_test_framework.scenarios.routing import RoutingTest

MODEL = "meta-llama/Meta-Llama-3-8B-Instruct"


class SimSampler(threading.Thread):
    """Peak summed RSS and last CPU seconds of this process's sim children."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.peak_rss = 0
        self.cpu: dict[int, float] = {}
        self.count = 0

    def run(self) -> None:
        me = psutil.Process()
        while not self.stop.wait(0.5):
            rss = 0
            sims = []
            for child in me.children(recursive=True):
                try:
                    if "sglang_test_framework.sim" in " ".join(child.cmdline()):
                        sims.append(child)
                        rss += child.memory_info().rss
                        t = child.cpu_times()
                        self.cpu[child.pid] = t.user + t.system
                except psutil.Error:
                    continue
            self.peak_rss = max(self.peak_rss, rss)
            self.count = max(self.count, len(sims))


def measure(workers: int, per_process: int, prompts: int, rate: float, policy: str, out: Path) -> dict[str, float]:
    cfg = RoutingConfig(
        model_path=MODEL,
        backend="sim",
        num_gpus=workers,
        sim_workers_per_process=per_process,
        routing_policy=policy,
        num_prompts=prompts,
        gsp_num_groups=workers,
        gsp_prompts_per_group=max(1, prompts // workers),
        gsp_system_prompt_len=512,
        gsp_question_len=32,
        gsp_output_len=32,
        request_rate=rate,
        output_dir=out,
        progress=False,
        write_plots=False,
        collect_timeseries=False,
    )
    sampler = SimSampler()
    sampler.start()
    start = time.monotonic()
    res = RoutingTest(cfg).run()
    wall = time.monotonic() - start
    sampler.stop.set()
    sampler.join()
    return {
        "processes": sampler.count,
        "peak_rss_mb": sampler.peak_rss / 2**20,
        "cpu_s": sum(sampler.cpu.values()),
        "wall_s": wall,
        "completed": float(res.summary.get("completed") or 0),
        "failed": float(res.summary.get("failed") or 0),
        "p50_ttft": float(res.summary.get("p50_ttft") or res.summary.get("median_ttft") or 0),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workers", type=int, default=32)
    p.add_argument("--prompts", type=int, default=320)
    p.add_argument("--rate", type=float, default=40.0)
    p.add_argument("--policy", default="round_robin")
    args = p.parse_args()
    base = Path(tempfile.mkdtemp(prefix="sim_fleet_footprint_"))
    print("| mode | sim processes | peak RSS (MB) | sim CPU (s) | test wall (s) | completed | failed | TTFT p50 (ms) |")
    print("|---|---|---|---|---|---|---|---|")
    for per in (args.workers, 1):
        r = measure(args.workers, per, args.prompts, args.rate, args.policy, base / f"per_{per}")
        mode = "one fleet process" if per > 1 else "one process per worker"
        print(
            f"| {mode} | {r['processes']:.0f} | {r['peak_rss_mb']:.0f} | {r['cpu_s']:.1f} | {r['wall_s']:.1f} "
            f"| {r['completed']:.0f} | {r['failed']:.0f} | {r['p50_ttft']:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
