"""The report's Trace Replay section shows the trace's statistics beside the measured ones."""

from __future__ import annotations

from sglang_test_framework.analysis.report import node_report_sections


def test_trace_section_lines() -> None:
    block = {
        "file": "t.jsonl",
        "format": "mooncake",
        "speedup": 4.0,
        "trace": {
            "rows": 3,
            "mean_rate": 1.5,
            "peak_rate_1s": 2.0,
            "peak_rate_10s": 0.3,
            "input_length": {"mean": 1000.0, "p50": 900.0, "p99": 1990.0},
            "output_length": {"mean": 10.0, "p50": 10.0, "p99": 10.0},
            "hit_rate_infinite": 0.25,
        },
        "measured": {
            "request_throughput": 1.25,
            "input_length": {"mean": 1000.0, "p50": 900.0, "p99": 1990.0},
            "output_length": {"mean": None, "p50": None, "p99": None},
            "cache_hit_rate": None,
        },
        "pacing_error_ms": {"p50": 0.5, "p99": 1.25, "max": 2.0},
    }
    sections = node_report_sections({"trace": block})
    assert sections[0].title == "Trace Replay (trace vs measured)"
    text = "\n".join(line for item in sections[0].lines for line in item.text())
    assert "- Trace: t.jsonl (mooncake, 3 rows)   Speedup: 4×" in text
    assert "Offered Rate: 1.50 req/s" in text and "Achieved Rate: 1.25 req/s" in text
    assert "Input (trace): mean 1,000, p50 900, p99 1,990   sent: mean 1,000, p50 900, p99 1,990" in text
    assert "Output (trace): mean 10, p50 10, p99 10   measured: mean n/a, p50 n/a, p99 n/a" in text
    assert "Ideal Hit Rate (unlimited cache): 25.00%   Measured Hit Rate: n/a" in text
    assert "Pacing Error (send − trace time): p50 0.50 ms, p99 1.25 ms, max 2.00 ms" in text
    closed = node_report_sections({"trace": {**block, "sessions": "closed"}})[0]
    text = "\n".join(line for item in closed.lines for line in item.text())
    assert "Speedup: 4×   Sessions: closed loop" in text
    assert "Pacing Error (send − scheduled): p50 0.50 ms" in text
