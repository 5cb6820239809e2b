"""Compare routing policies on one seeded shared-prefix workload: three simulated workers behind the
real sglang-router (cache_aware, round_robin) and our Python router (shortest_queue).

    python examples/routing_comparison.py [--quick]
"""

from __future__ import annotations

import sys

from sglang_test_framework import RoutingConfig, RoutingTest


def main(quick: bool = False) -> int:
    config = RoutingConfig(
        model_path="meta-llama/Meta-Llama-3-8B-Instruct",
        backend="sim",
        num_gpus=3,
        request_rate=40.0 if quick else 20.0,
        dataset_name="generated-shared-prefix",
        gsp_num_groups=6,
        gsp_prompts_per_group=5 if quick else 20,
        gsp_system_prompt_len=1024,
        gsp_question_len=32,
        gsp_output_len=16 if quick else 64,
        output_dir="results/example_routing",
        progress=not quick,
    )
    comparison = RoutingTest.compare(config, ["cache_aware", "round_robin", "shortest_queue"])
    print(comparison.to_text())
    print("files:", ", ".join(str(p) for p in comparison.files.values()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(quick="--quick" in sys.argv))
