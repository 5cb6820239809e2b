"""Prometheus text parsing and process memory (no sockets)."""

from __future__ import annotations

import os

import pytest

from sglang_test_framework.metrics.prometheus import (
    parse_metrics,
    process_rss_bytes,
    sum_over_labels,
)

LABELS = 'model_name="m",engine_type="unified",tp_rank="0",pp_rank="0",moe_ep_rank="0"'
PAGE = f"""# HELP sglang:num_running_reqs running
# TYPE sglang:num_running_reqs gauge
sglang:num_running_reqs{{{LABELS},dp_rank="0"}} 3.0
sglang:num_running_reqs{{{LABELS},dp_rank="1"}} 4.0
# HELP sglang:num_queue_reqs queued
# TYPE sglang:num_queue_reqs gauge
sglang:num_queue_reqs{{{LABELS}}} 2.0
# HELP sglang:prompt_tokens_total prompt tokens
# TYPE sglang:prompt_tokens_total counter
sglang:prompt_tokens_total{{model_name="m",engine_type="unified"}} 1200.0
# HELP sglang:cached_tokens_total cached
# TYPE sglang:cached_tokens_total counter
sglang:cached_tokens_total{{model_name="m",cache_source="device"}} 300.0
sglang:cached_tokens_total{{model_name="m",cache_source="host"}} 100.0
# HELP sglang:e2e_request_latency_seconds e2e
# TYPE sglang:e2e_request_latency_seconds histogram
sglang:e2e_request_latency_seconds_bucket{{model_name="m",le="1.0"}} 5.0
sglang:e2e_request_latency_seconds_bucket{{model_name="m",le="+Inf"}} 6.0
sglang:e2e_request_latency_seconds_sum{{model_name="m"}} 4.5
sglang:e2e_request_latency_seconds_count{{model_name="m"}} 6.0
# HELP smg_worker_requests_active active
# TYPE smg_worker_requests_active gauge
smg_worker_requests_active{{worker="http://w1"}} 7.0
# HELP sglang:unrelated_gauge not kept
# TYPE sglang:unrelated_gauge gauge
sglang:unrelated_gauge 9.0
"""


def test_parse_keeps_the_listed_series_with_their_varying_labels() -> None:
    samples = parse_metrics(PAGE, 123, "s1")
    got = {(s.metric, s.labels): s.value for s in samples}
    assert got == {
        ("sglang:num_running_reqs", "dp_rank=0"): 3.0,
        ("sglang:num_running_reqs", "dp_rank=1"): 4.0,
        ("sglang:num_queue_reqs", ""): 2.0,
        ("sglang:prompt_tokens_total", ""): 1200.0,
        ("sglang:cached_tokens_total", "cache_source=device"): 300.0,
        ("sglang:cached_tokens_total", "cache_source=host"): 100.0,
        ("smg_worker_requests_active", "worker=http://w1"): 7.0,
    }
    assert all(s.t_ns == 123 and s.target == "s1" for s in samples)


def test_sum_over_labels_skips_buckets() -> None:
    sums = sum_over_labels(PAGE)
    assert sums["sglang:num_running_reqs"] == 7.0 and sums["sglang:cached_tokens_total"] == 400.0
    assert sums["sglang:e2e_request_latency_seconds_count"] == 6.0
    assert "sglang:e2e_request_latency_seconds_bucket" not in sums
    assert sum_over_labels(PAGE, keep={"sglang:num_queue_reqs"}) == {"sglang:num_queue_reqs": 2.0}


def test_invalid_page_raises_value_error() -> None:
    with pytest.raises(ValueError):
        parse_metrics("this is { not prometheus", 0, "s")


def test_process_rss_of_this_process_and_of_a_missing_one() -> None:
    rss = process_rss_bytes(os.getpid())
    assert rss is not None and rss > 1_000_000
    assert process_rss_bytes(2**31 - 2) is None
