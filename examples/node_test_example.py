"""The spec's NodeTest example on the simulated server (no GPU needed).

python examples/node_test_example.py [--quick]
"""

from __future__ import annotations

import sys

from sglang_test_framework import NodeConfig, NodeTest


def main(quick: bool = False) -> int:
    config = NodeConfig(
        model_path="meta-llama/Llama-2-7b-hf",
        gpu_id=0,
        request_rate=10.0,
        num_prompts=20 if quick else 100,
        backend="sim",
        port=0,  # any free port; the spec's default is 30000
        output_dir="results/example_node",
        progress=not quick,
    )
    test = NodeTest(config)
    results = test.run()
    test.analyze_results(results)
    print(
        f"Throughput={results['metrics']['request_throughput']:.2f} req/s, "
        f"P99 Latency={results['metrics']['p99_server_latency']:.1f} ms, "
        f"success rate={results['success_rate']:.1%}, CSV={results['exported_files']['csv']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(quick="--quick" in sys.argv))
