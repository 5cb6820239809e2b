"""Scraping Prometheus endpoints (servers, the router) and process memory, on the records' clock."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import aiohttp
import psutil
from prometheus_client.parser import text_string_to_metric_families

__all__ = ["KEEP_PREFIXES", "Sample", "ScrapeTarget", "parse_metrics", "process_rss_bytes", "scrape"]

# Which series to keep from a scrape (everything else is dropped to keep time series small).
KEEP_PREFIXES = (
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
    "smg_worker_requests_active",
    "smg_router_requests_total",
    "smg_worker_health",
)


@dataclass(frozen=True)
class ScrapeTarget:
    """A Prometheus endpoint to scrape (``url``) and optionally a process whose RSS to sample."""

    name: str
    url: str
    pid: int | None = None
    api_key: str | None = None


@dataclass(frozen=True)
class Sample:
    """One value of one series at one time (``t_ns`` is ``time.monotonic_ns()``)."""

    t_ns: int
    target: str
    metric: str
    labels: str
    value: float


def parse_metrics(text: str, t_ns: int, target: str, keep: tuple[str, ...] = KEEP_PREFIXES) -> list[Sample]:
    """Samples of the kept series in a Prometheus text page."""
    out = []
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name.startswith(keep) and not s.name.endswith("_created"):
                labels = ",".join(
                    f"{k}={v}"
                    for k, v in sorted(s.labels.items())
                    if k not in ("model_name", "engine_type", "tp_rank", "pp_rank", "moe_ep_rank")
                )
                out.append(Sample(t_ns, target, s.name, labels, float(s.value)))
    return out


def process_rss_bytes(pid: int) -> float | None:
    """Resident memory of a process and all its children (SGLang runs several processes)."""
    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
        return float(sum(p.memory_info().rss for p in procs if p.is_running()))
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


async def scrape(session: aiohttp.ClientSession, target: ScrapeTarget) -> tuple[list[Sample], str | None]:
    """One scrape of ``target``: its samples (plus ``process_rss_bytes``) and an error message or None."""
    t_ns = time.monotonic_ns()
    samples: list[Sample] = []
    error = None
    if target.url:
        headers = {"Authorization": f"Bearer {target.api_key}"} if target.api_key else {}
        try:
            async with session.get(target.url, headers=headers, timeout=aiohttp.ClientTimeout(total=5)) as resp:
                text = await resp.text()
                if resp.status == 200:
                    samples = parse_metrics(text, t_ns, target.name)
                else:
                    error = f"HTTP {resp.status}"
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}"
    if target.pid is not None:
        rss = await asyncio.to_thread(process_rss_bytes, target.pid)
        if rss is not None:
            samples.append(Sample(t_ns, target.name, "process_rss_bytes", "", rss))
    return samples, error
