"""Soak runs: a NodeTest for a fixed duration with server memory sampled, reporting memory growth and
flagging a leak trend."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..config.node_config import NodeConfig
from ..errors import ConfigError
from ..metrics.trends import MemoryTrend, memory_trends
from ..results import RunResults
from .node import NodeTest

__all__ = ["SoakResult", "run_soak"]


@dataclass
class SoakResult:
    """The run and one memory trend per sampled process."""

    results: RunResults
    trends: list[MemoryTrend]

    @property
    def leak_suspected(self) -> bool:
        """True if any process's memory grew steadily (see :class:`MemoryTrend`)."""
        return any(t.leak_suspected for t in self.trends)

    def to_text(self) -> str:
        """One line per process."""
        lines = ["Memory (RSS) during the soak run:"]
        for t in self.trends:
            flag = "  <-- steady growth: possible leak" if t.leak_suspected else ""
            lines.append(
                f"- {t.target}: {t.start_mb:.1f} → {t.end_mb:.1f} MiB ({t.growth_mb:+.1f} MiB, "
                f"{t.slope_mb_per_min:+.2f} MiB/min, r²={t.r2:.2f}, {t.samples} samples){flag}"
            )
        if not self.trends:
            lines.append("- no memory samples (is collect_timeseries on?)")
        return "\n".join(lines)


def run_soak(config: NodeConfig, duration_s: float, min_slope_mb_per_min: float = 1.0) -> SoakResult:
    """Send ``request_rate × duration_s`` requests (open loop) and analyse the servers' RSS over time."""
    if not (math.isfinite(duration_s) and duration_s > 0):
        raise ConfigError(f"duration_s: must be a finite number of seconds > 0, got {duration_s}")
    if not math.isfinite(config.request_rate):
        raise ConfigError("request_rate: a soak run needs a finite rate in requests per second, e.g. --request-rate 10")
    num = max(1, math.ceil(config.request_rate * duration_s))
    cfg = config.with_updates(num_prompts=num, collect_timeseries=True)
    test = NodeTest(cfg)
    results = test.run()
    trends = memory_trends(results.timeseries, min_slope_mb_per_min=min_slope_mb_per_min)
    results.summary["memory_trends"] = [t.to_dict() for t in trends]
    return SoakResult(results, trends)
