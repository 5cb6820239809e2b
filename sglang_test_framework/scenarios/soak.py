"""Soak runs: a NodeTest for a fixed duration with server memory sampled, reporting memory growth and
flagging a leak trend."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..config.node_config import NodeConfig
from ..errors import ConfigError
from ..metrics.trends import LeakRule, MemoryTrend, memory_trends
from ..results import RunResults
from .node import NodeTest

__all__ = ["SoakResult", "run_soak"]


@dataclass
class SoakResult:
    """The run, one memory trend per sampled process, and the rule that judged them."""

    results: RunResults
    trends: list[MemoryTrend]
    rule: LeakRule = field(default_factory=LeakRule)

    @property
    def leak_suspected(self) -> bool:
        """True if any process's memory grew steadily (see :class:`MemoryTrend`)."""
        return any(t.leak_suspected for t in self.trends)

    def to_text(self) -> str:
        """The rule with its thresholds, then one line per process with its verdict and why."""
        lines = ["Memory (RSS) during the soak run:", f"Rule: {self.rule.describe()}"]
        for t in self.trends:
            flag = "  <-- steady growth: possible leak" if t.leak_suspected else ""
            lines.append(
                f"- {t.target}: {t.start_mb:.1f} → {t.end_mb:.1f} MiB ({t.growth_mb:+.1f} MiB, "
                f"{t.slope_mb_per_min:+.2f} MiB/min, r²={t.r2:.2f}, {t.samples} samples): {t.verdict}{flag}"
            )
        if not self.trends:
            lines.append("- no memory samples (is collect_timeseries on?)")
        return "\n".join(lines)


def run_soak(config: NodeConfig, duration_s: float | None = None, rule: LeakRule | None = None) -> SoakResult:
    """Send ``request_rate × duration_s`` requests (open loop) and analyse the servers' RSS over time
    with ``rule`` (default :class:`LeakRule`: 1 MiB/min, r² 0.6, 5 MiB). ``duration_s`` defaults to
    ``config.duration_s``."""
    duration_s = duration_s if duration_s is not None else config.duration_s
    rule = rule or LeakRule()
    if config.repeats != 1:
        raise ConfigError(f"repeats: {config.repeats}; a soak run is one long run, leave repeats at 1")
    if duration_s is None or not (math.isfinite(duration_s) and duration_s > 0):
        raise ConfigError(f"duration_s: must be a finite number of seconds > 0, got {duration_s}")
    if not math.isfinite(config.request_rate):
        raise ConfigError("request_rate: a soak run needs a finite rate in requests per second, e.g. --request-rate 10")
    values = config.explicit_values()
    values.pop("num_prompts", None)  # duration_s sizes the load (docs/workloads.md)
    values.update(duration_s=duration_s, collect_timeseries=True)
    cfg = NodeConfig.build(source="soak config", **values)
    test = NodeTest(cfg)
    results = test.run()
    trends = memory_trends(results.timeseries, rule.min_slope_mb_per_min, rule.min_r2, rule.min_growth_mb)
    results.summary["memory_trends"] = [t.to_dict() for t in trends]
    results.summary["memory_leak_rule"] = rule.to_dict()
    return SoakResult(results, trends, rule)
