"""The Node Test Results block and the plain-text table formatter."""

from __future__ import annotations

import math

from sglang_test_framework.analysis.report import format_node_report, format_table

SUMMARY = {
    "completed": 10,
    "failed": 1,
    "success_rate": 10 / 11,
    "duration_s": 1.01,
    "request_throughput": 9.87,
    "input_throughput": 5032.4,
    "output_throughput": 1258.0,
    "mean_server_latency": 245.31,
    "mean_total_latency": 312.7,
    "median_server_latency": 230.0,
    "p95_server_latency": 489.2,
    "p99_server_latency": 612.8,
    "mean_ttft": 20.0,
    "median_ttft": 18.0,
    "p95_ttft": 40.0,
    "p99_ttft": 55.5,
    "mean_itl": 9.0,
    "median_itl": 8.5,
    "p95_itl": 12.0,
    "p99_itl": 20.0,
    "mean_queue_time": 67.4,
    "max_queue_depth": 42,
    "max_server_queue_depth": 7.0,
    "cache_hit_rate": 0.25,
    "errors_by_type": {"http": 1},
    "first_errors": ["r1: HTTP 500"],
}
CONTEXT = {
    "model": "meta-llama/Llama-2-7b-hf",
    "backend": "sim",
    "sim_profile": "H100-SXM",
    "max_running_requests": 256,
    "request_rate": 10.0,
}


def test_report_has_the_key_lines() -> None:
    text = format_node_report(SUMMARY, CONTEXT)
    lines = text.splitlines()
    assert lines[0].startswith("=") and "Node Test Results" in lines[0] and set(lines[-1]) == {"="}
    for line in (
        "Model: meta-llama/Llama-2-7b-hf",
        "Backend: sim (H100-SXM)   Max Running Requests: 256   Request Rate: 10 req/s",
        "Throughput Metrics:",
        "- Request Throughput: 9.87 req/s",
        "- Input Token Throughput: 5,032 tok/s",
        "- Output Token Throughput: 1,258 tok/s",
        "Latency Metrics:",
        "- Mean Server Latency: 245.3 ms",
        "- Mean Total Latency: 312.7 ms",
        "- P95 Server Latency: 489.2 ms",
        "- P99 Server Latency: 612.8 ms",
        "- TTFT (mean / P50 / P95 / P99): 20.0 / 18.0 / 40.0 / 55.5 ms",
        "- ITL (mean / P50 / P95 / P99): 9.0 / 8.5 / 12.0 / 20.0 ms",
        "Queue Metrics:",
        "- Mean Queue Time: 67.4 ms",
        "- Cache Hit Rate: 25.0%",
        "- Errors: http: 1",
        "  r1: HTTP 500",
    ):
        assert line in lines, line
    assert any(x.startswith("- Max Queue Depth: 42") for x in lines)
    assert any(x.startswith("- Max Server Queue Depth: 7") for x in lines)
    assert "- TPOT (mean / P50 / P95 / P99): n/a" in lines  # undefined (e.g. without streaming): n/a, never 0


def test_report_for_an_unbounded_rate_and_no_errors() -> None:
    summary = {**SUMMARY, "errors_by_type": {}, "max_server_queue_depth": None}
    text = format_node_report(summary, {**CONTEXT, "request_rate": math.inf})
    assert "Request Rate: inf (all at once)" in text and "Errors" not in text and "Server Queue" not in text


def test_table_columns_are_aligned() -> None:
    rows = [{"name": "alpha", "req/s": 1.5, "n": 3}, {"name": "b", "req/s": 1234.25, "n": None}]
    text = format_table(rows)
    lines = text.splitlines()
    assert lines[0].split() == ["name", "req/s", "n"] and set(lines[1].replace(" ", "")) == {"-"}
    assert lines[2].startswith("alpha") and lines[3].startswith("b    ")
    assert lines[2].index("1.50") + 4 == lines[3].index("1,234.25") + 8  # numbers right-aligned
    assert lines[3].endswith("n/a")
    assert format_table([]) == "(no rows)"


def test_client_queue_label_follows_max_concurrency() -> None:
    unset = format_node_report(SUMMARY, {**CONTEXT, "max_concurrency": None})
    assert "max_concurrency is not set" in unset and "slot" not in unset
    limited = format_node_report(SUMMARY, {**CONTEXT, "max_concurrency": 8})
    assert "waiting for one of 8 max_concurrency slots" in limited
    assert "slot" not in format_node_report(SUMMARY, CONTEXT)  # a context that does not say: no slot claimed


def test_coalesced_chunks_line_explains_zero_itl_gaps() -> None:
    lines = format_node_report({**SUMMARY, "coalesced_chunk_share": 0.021}, CONTEXT).splitlines()
    line = next(x for x in lines if x.startswith("- Coalesced Chunks: "))
    assert line.startswith("- Coalesced Chunks: 2.1% of chunks") and "ITL gaps between them are 0 and kept" in line
    unstreamed = format_node_report({**SUMMARY, "coalesced_chunk_share": None}, CONTEXT)
    assert "- Coalesced Chunks: n/a" in unstreamed
