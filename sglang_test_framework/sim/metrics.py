"""Prometheus text exposition with SGLang's metric names and labels (written by hand: cheap, and
parseable by prometheus_client's parser)."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

__all__ = ["TTFT_BUCKETS", "Histogram", "SimMetrics"]

TTFT_BUCKETS = (0.1, 0.2, 0.4, 0.6, 0.8, 1, 2, 4, 6, 8, 10, 20, 40, 60, 80, 100, 200, 400)
ITL_BUCKETS = (
    0.002,
    0.004,
    0.006,
    0.008,
    0.010,
    0.015,
    0.020,
    0.025,
    0.030,
    0.035,
    0.040,
    0.060,
    0.080,
    0.1,
    0.2,
    0.4,
    0.6,
    0.8,
    1,
    2,
    4,
    6,
    8,
)
E2E_BUCKETS = (0.1, 0.2, 0.4, 0.6, 0.8, 1, 2, 4, 6, 8, 10, 20, 40, 60, 80, 100, 200, 400, 800, 1200, 2400)
QUEUE_BUCKETS = (
    0,
    0.1,
    0.2,
    0.5,
    1,
    2,
    3,
    4,
    5,
    10,
    15,
    20,
    30,
    40,
    50,
    60,
    70,
    80,
    90,
    100,
    200,
    300,
    400,
    500,
    600,
    700,
    800,
    900,
    1000,
    1200,
    1400,
    1600,
    1800,
    2000,
    2500,
    3000,
)


@dataclass
class Histogram:
    """A Prometheus histogram (cumulative buckets are built at exposition)."""

    buckets: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    n: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.buckets) + 1)

    def observe(self, value: float, times: int = 1) -> None:
        """Record ``value`` (``times`` times)."""
        self.counts[bisect.bisect_left(self.buckets, value)] += times
        self.total += value * times
        self.n += times

    def lines(self, name: str, labels: str) -> list[str]:
        """Exposition lines (``_bucket``, ``_sum``, ``_count``)."""
        out, acc = [], 0
        for bound, count in zip(self.buckets, self.counts, strict=False):
            acc += count
            out.append(f'{name}_bucket{{{labels},le="{float(bound)}"}} {acc}')
        out.append(f'{name}_bucket{{{labels},le="+Inf"}} {self.n}')
        out.append(f"{name}_sum{{{labels}}} {self.total}")
        out.append(f"{name}_count{{{labels}}} {self.n}")
        return out


@dataclass
class SimMetrics:
    """Tokenizer-side counters and histograms; scheduler gauges are passed in at exposition time."""

    model_name: str
    engine_type: str = "unified"  # PD: "prefill" | "decode"
    prompt_tokens: int = 0
    generation_tokens: int = 0
    cached_tokens: int = 0
    requests: int = 0
    aborted: int = 0
    ttft: Histogram = field(default_factory=lambda: Histogram(TTFT_BUCKETS))
    itl: Histogram = field(default_factory=lambda: Histogram(ITL_BUCKETS))
    e2e: Histogram = field(default_factory=lambda: Histogram(E2E_BUCKETS))
    queue: Histogram = field(default_factory=lambda: Histogram(QUEUE_BUCKETS))

    def render(self, gauges: dict[str, float], counters: dict[str, float], realtime: dict[str, float]) -> str:
        """The whole ``/metrics`` page."""
        sched = (
            f'model_name="{self.model_name}",engine_type="{self.engine_type}",tp_rank="0",pp_rank="0",moe_ep_rank="0"'
        )
        tok = f'model_name="{self.model_name}",engine_type="{self.engine_type}"'
        lines: list[str] = []
        for name, value in gauges.items():
            lines += [
                f"# HELP sglang:{name} {name}",
                f"# TYPE sglang:{name} gauge",
                f"sglang:{name}{{{sched}}} {value}",
            ]
        for name, value in counters.items():
            lines += [
                f"# HELP sglang:{name} {name}",
                f"# TYPE sglang:{name} counter",
                f"sglang:{name}{{{sched}}} {value}",
            ]
        lines += ["# HELP sglang:realtime_tokens_total tokens processed", "# TYPE sglang:realtime_tokens_total counter"]
        lines += [f'sglang:realtime_tokens_total{{{sched},mode="{mode}"}} {v}' for mode, v in realtime.items()]
        own = {
            "prompt_tokens_total": self.prompt_tokens,
            "generation_tokens_total": self.generation_tokens,
            "num_requests_total": self.requests,
            "num_aborted_requests_total": self.aborted,
        }
        for name, value in own.items():
            lines += [
                f"# HELP sglang:{name} {name}",
                f"# TYPE sglang:{name} counter",
                f"sglang:{name}{{{tok}}} {value}",
            ]
        lines += [
            "# HELP sglang:cached_tokens_total cached prompt tokens",
            "# TYPE sglang:cached_tokens_total counter",
            f'sglang:cached_tokens_total{{{tok},cache_source="device"}} {self.cached_tokens}',
        ]
        for name, hist, labels in (
            ("time_to_first_token_seconds", self.ttft, tok + ',is_streaming="true"'),
            ("inter_token_latency_seconds", self.itl, tok),
            ("e2e_request_latency_seconds", self.e2e, tok + ',is_streaming="true"'),
            ("queue_time_seconds", self.queue, sched),
        ):
            lines += [f"# HELP sglang:{name} {name}", f"# TYPE sglang:{name} histogram"]
            lines += hist.lines(f"sglang:{name}", labels)
        return "\n".join(lines) + "\n"
