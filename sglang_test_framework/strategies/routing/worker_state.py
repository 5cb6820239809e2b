"""The proxy's bookkeeping for one worker, and parsing of a worker's Prometheus ``/metrics`` page."""

from __future__ import annotations

from collections import deque
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from .base import LATENCY_FLOOR_S, WorkerMetrics

__all__ = ["SCRAPED_METRICS", "WorkerState", "parse_worker_metrics"]

SCRAPED_METRICS: dict[str, str] = {
    "sglang:num_running_reqs": "sum",
    "sglang:num_queue_reqs": "sum",
    "sglang:token_usage": "mean",
    "sglang:cache_hit_rate": "mean",
    "sglang:gen_throughput": "sum",
    "sglang:generation_tokens_total": "sum",
}
"""Sample name → how samples with different labels (DP ranks, priorities…) are combined: counts add
up, ratios are averaged."""

_FAMILY_NAMES = frozenset(SCRAPED_METRICS) | frozenset(n.removesuffix("_total") for n in SCRAPED_METRICS)


def _keep_line(line: str) -> bool:
    """Cheap pre-filter so the Prometheus parser only sees the few series we use (a worker's page
    holds hundreds of histogram lines; parsing them all every refresh would cost milliseconds)."""
    if line.startswith("#"):
        parts = line.split(maxsplit=3)
        return len(parts) >= 3 and parts[1] in ("HELP", "TYPE") and parts[2] in _FAMILY_NAMES
    name = line.split("{", 1)[0].split(" ", 1)[0]
    return name in SCRAPED_METRICS


def parse_worker_metrics(text: str) -> dict[str, float]:
    """The :data:`SCRAPED_METRICS` values found in a Prometheus text page (missing ones are absent).

    Raises:
        ValueError: The page is not valid Prometheus text.
    """
    filtered = "\n".join(line for line in text.splitlines() if _keep_line(line)) + "\n"
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for family in text_string_to_metric_families(filtered):
        for sample in family.samples:
            if sample.name in SCRAPED_METRICS:
                sums[sample.name] = sums.get(sample.name, 0.0) + float(sample.value)
                counts[sample.name] = counts.get(sample.name, 0) + 1
    return {name: total / counts[name] if SCRAPED_METRICS[name] == "mean" else total for name, total in sums.items()}


class WorkerState:
    """One worker as the proxy knows it: URL, live :class:`WorkerMetrics`, latency window, counters.

    Args:
        worker_id: The framework's worker id (``X-Worker-Id``).
        url: Base URL of the worker.
        latency_window: How many recent successful requests ``metrics.latency`` averages.
        throughput_samples: How many scrapes the generated-tokens rate spans (≥ 2).
    """

    def __init__(self, worker_id: str, url: str, latency_window: int = 64, throughput_samples: int = 5) -> None:
        self.worker_id = worker_id
        self.url = url.rstrip("/")
        self.metrics = WorkerMetrics()
        self.decisions = 0
        self.decision_ns_total = 0
        self.connect_failures = 0
        self.client_disconnects = 0
        self._latencies_s: deque[float] = deque(maxlen=max(1, latency_window))
        self._token_samples: deque[tuple[float, float]] = deque(maxlen=max(2, throughput_samples))

    def record_decision(self, elapsed_ns: int) -> None:
        """Count one routing decision that chose this worker and the time it took."""
        self.decisions += 1
        self.decision_ns_total += elapsed_ns

    def request_started(self) -> None:
        """A request is being sent to this worker."""
        m = self.metrics
        m.in_flight += 1
        m.queue_depth = m.in_flight + m.queued

    def request_finished(self, latency_s: float, success: bool, worker_error: bool) -> None:
        """A request attempt ended; only successful ones feed the latency window.

        Args:
            latency_s: From sending upstream to the end of relaying (or the failure).
            success: A 2xx answer was relayed completely.
            worker_error: The worker is to blame (non-2xx, broken stream, failed connection).
        """
        m = self.metrics
        m.in_flight -= 1
        m.queue_depth = m.in_flight + m.queued
        m.requests_total += 1
        if worker_error:
            m.errors_total += 1
        if success:
            self._latencies_s.append(latency_s)
            m.latency = max(LATENCY_FLOOR_S, sum(self._latencies_s) / len(self._latencies_s))

    def mark_unhealthy(self) -> None:
        """A connection to the worker failed; it stays out of routing until a scrape succeeds."""
        self.metrics.healthy = False

    def apply_scrape(self, values: dict[str, float], now_s: float) -> None:
        """Store freshly scraped worker values (see :func:`parse_worker_metrics`) taken at ``now_s``."""
        m = self.metrics
        m.healthy = True
        if "sglang:num_running_reqs" in values:
            m.running = round(values["sglang:num_running_reqs"])
        if "sglang:num_queue_reqs" in values:
            m.queued = round(values["sglang:num_queue_reqs"])
        m.memory_usage = values.get("sglang:token_usage", m.memory_usage)
        m.cache_hit_rate = values.get("sglang:cache_hit_rate", m.cache_hit_rate)
        m.queue_depth = m.in_flight + m.queued
        m.throughput = self._throughput(values, now_s)

    def _throughput(self, values: dict[str, float], now_s: float) -> float:
        """Output tokens/s from the generated-tokens counter's rate; the worker's own gauge otherwise."""
        total = values.get("sglang:generation_tokens_total")
        if total is None:
            self._token_samples.clear()
            return max(0.0, values.get("sglang:gen_throughput", 0.0))
        if self._token_samples and total < self._token_samples[-1][1]:
            self._token_samples.clear()  # counter reset: the worker restarted
        self._token_samples.append((now_s, total))
        first_s, first_total = self._token_samples[0]
        if now_s <= first_s:
            return max(0.0, values.get("sglang:gen_throughput", 0.0))
        return (total - first_total) / (now_s - first_s)

    def stats(self) -> dict[str, Any]:
        """Per-worker bookkeeping for reports (JSON-serialisable)."""
        m = self.metrics
        return {
            "url": self.url,
            "healthy": m.healthy,
            "requests": m.requests_total,
            "errors": m.errors_total,
            "in_flight": m.in_flight,
            "connect_failures": self.connect_failures,
            "client_disconnects": self.client_disconnects,
            "decisions": self.decisions,
            "mean_decision_us": self.decision_ns_total / self.decisions / 1e3 if self.decisions else 0.0,
            "latency_s": m.latency,
            "throughput_tok_s": m.throughput,
        }
