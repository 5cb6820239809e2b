"""The spec's custom routing policy — score = throughput / (latency × (1 + queue_depth)) — registered
with RoutingFactory and run on three simulated workers behind our Python router.

    python examples/custom_policy.py [--quick]
"""

from __future__ import annotations

import sys

from sglang_test_framework import RoutingConfig, RoutingFactory, RoutingTest
from sglang_test_framework.strategies.routing.base import BaseRoutingPolicy


class CustomRoutingPolicy(BaseRoutingPolicy):
    def __init__(self, workers):  # type: ignore[no-untyped-def]
        super().__init__(workers)

    def route_request(self, request, server_metrics):  # type: ignore[no-untyped-def]
        """Route by server metrics: throughput, latency, queue_depth, memory_usage (see WorkerMetrics)."""
        scores = []
        for worker_id, metrics in server_metrics.items():
            # + 1.0: before the first metrics refresh every throughput is 0, which would score all workers 0
            score = (metrics["throughput"] + 1.0) / (metrics["latency"] * (1 + metrics["queue_depth"]))
            scores.append((worker_id, score))
        return max(scores, key=lambda x: x[1])[0]


RoutingFactory.register("throughput_latency", CustomRoutingPolicy)


def main(quick: bool = False) -> int:
    config = RoutingConfig(
        model_path="meta-llama/Meta-Llama-3-8B-Instruct",
        backend="sim",
        num_gpus=3,
        routing_policy="throughput_latency",
        request_rate=30.0,
        num_prompts=30 if quick else 300,
        dataset_name="random",
        random_input_len=256,
        random_output_len=32 if quick else 128,
        output_dir="results/example_custom_policy",
        progress=not quick,
    )
    test = RoutingTest(config)
    results = test.run()
    print(results.per_worker.to_string(index=False) if results.per_worker is not None else "")
    print("plots:", ", ".join(str(p) for p in test.visualize_results(results)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(quick="--quick" in sys.argv))
