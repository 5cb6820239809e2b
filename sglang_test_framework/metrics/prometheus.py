"""Reading Prometheus text endpoints (SGLang servers, the router's listener) and process memory.

Every sample is stamped with ``time.monotonic_ns()`` taken just before the request, the clock of the
request records, so server time series and client measurements line up.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection
from dataclasses import dataclass

import aiohttp
import psutil
from prometheus_client.parser import text_string_to_metric_families

from ..errors import FrameworkError
from ..http_api import auth_headers

__all__ = [
    "CONSTANT_LABELS",
    "KEPT_METRICS",
    "RSS_METRIC",
    "Sample",
    "ScrapeTarget",
    "fetch_server_metrics",
    "parse_metrics",
    "process_rss_bytes",
    "scrape",
    "sum_over_labels",
]

# Sample names kept in time series (everything else on the page is dropped to keep them small).
KEPT_METRICS: frozenset[str] = frozenset(
    {
        "sglang:num_running_reqs",
        "sglang:num_queue_reqs",
        "sglang:token_usage",
        "sglang:num_used_tokens",
        "sglang:cache_hit_rate",
        "sglang:gen_throughput",
        "sglang:num_retracted_reqs",
        "sglang:num_retracted_requests_total",
        "sglang:prompt_tokens_total",
        "sglang:generation_tokens_total",
        "sglang:cached_tokens_total",
        "sglang:num_requests_total",
        "sglang:num_aborted_requests_total",
        "smg_worker_requests_active",
        "smg_router_requests_total",
        "smg_worker_health",
    }
)
# Labels identical on every sample of one server: dropped from the stored label string.
CONSTANT_LABELS: frozenset[str] = frozenset({"model_name", "engine_type", "tp_rank", "pp_rank", "moe_ep_rank"})
RSS_METRIC = "process_rss_bytes"


@dataclass(frozen=True)
class ScrapeTarget:
    """One thing to sample during a run.

    Attributes:
        name: Series name in the time series (a server id, ``router``…).
        url: Full URL of its Prometheus text page (``http://host:port/metrics``); empty for RSS only.
        pid: A process whose resident memory (children included) is sampled as ``process_rss_bytes``.
        api_key: Sent as ``Authorization: Bearer <key>`` (SGLang exempts ``/metrics``, but a proxy may not).
        timeout_s: Limit for one scrape of ``url``.
    """

    name: str
    url: str
    pid: int | None = None
    api_key: str | None = None
    timeout_s: float = 5.0


@dataclass(frozen=True)
class Sample:
    """One value of one series: ``t_ns`` (``time.monotonic_ns()``), target name, sample name,
    labels as ``k=v`` pairs joined by commas (sorted, constant labels dropped), value."""

    t_ns: int
    target: str
    metric: str
    labels: str
    value: float


def _label_string(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()) if k not in CONSTANT_LABELS)


def parse_metrics(text: str, t_ns: int, target: str, keep: Collection[str] = KEPT_METRICS) -> list[Sample]:
    """The samples of ``text`` (Prometheus text format) whose names are in ``keep``.

    Raises:
        ValueError: ``text`` is not valid Prometheus exposition text.
    """
    return [
        Sample(t_ns, target, s.name, _label_string(s.labels), float(s.value))
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name in keep
    ]


def sum_over_labels(text: str, keep: Collection[str] | None = None) -> dict[str, float]:
    """Each sample name's value summed over its label sets (all names, or those in ``keep``).

    Histogram ``_bucket`` and ``*_created`` samples are skipped (their sums mean nothing); ``_sum`` and
    ``_count`` are kept.

    Raises:
        ValueError: ``text`` is not valid Prometheus exposition text.
    """
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name.endswith(("_bucket", "_created")) or (keep is not None and s.name not in keep):
                continue
            out[s.name] = out.get(s.name, 0.0) + float(s.value)
    return out


def process_rss_bytes(pid: int) -> float | None:
    """Resident memory (bytes) of process ``pid`` and all its children (SGLang runs several
    processes); ``None`` if it is gone or not readable."""
    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue  # a child that exited between listing and reading
    return float(total)


async def _get_text(session: aiohttp.ClientSession, url: str, api_key: str | None, timeout_s: float) -> str:
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with session.get(url, headers=auth_headers(api_key), timeout=timeout) as resp:
        text = await resp.text()
        if resp.status != 200:
            raise ValueError(f"HTTP {resp.status} from {url}: {text[:200]}")
        return text


async def scrape(session: aiohttp.ClientSession, target: ScrapeTarget) -> tuple[list[Sample], str | None]:
    """Sample ``target`` once: its kept metrics (plus ``process_rss_bytes`` with a pid) and an error
    message (``None`` on success). Never raises for an unreachable or broken endpoint."""
    t_ns = time.monotonic_ns()
    samples: list[Sample] = []
    error: str | None = None
    if target.url:
        try:
            text = await _get_text(session, target.url, target.api_key, target.timeout_s)
            samples = parse_metrics(text, t_ns, target.name)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if target.pid is not None:
        rss = await asyncio.to_thread(process_rss_bytes, target.pid)
        if rss is not None:
            samples.append(Sample(t_ns, target.name, RSS_METRIC, "", rss))
    return samples, error


async def fetch_server_metrics(
    url: str,
    *,
    api_key: str | None = None,
    timeout_s: float = 5.0,
    session: aiohttp.ClientSession | None = None,
) -> dict[str, float]:
    """One-shot read of a Prometheus page: every sample name summed over labels (:func:`sum_over_labels`).

    Args:
        url: Full metrics URL, e.g. ``http://127.0.0.1:30000/metrics``.
        api_key: Optional bearer token.
        timeout_s: Limit for the request.
        session: An open session to reuse (a temporary one otherwise).

    Raises:
        FrameworkError: the endpoint is unreachable, answers non-200, or the page does not parse; the
            message names the URL (SGLang serves ``/metrics`` only with ``--enable-metrics``).
    """
    try:
        if session is None:
            async with aiohttp.ClientSession() as own:
                text = await _get_text(own, url, api_key, timeout_s)
        else:
            text = await _get_text(session, url, api_key, timeout_s)
        return sum_over_labels(text)
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as exc:
        raise FrameworkError(
            f"metrics from {url}: {type(exc).__name__}: {exc} (is the server running with --enable-metrics?)"
        ) from exc
