"""Trend analysis of sampled server memory (soak runs): growth, slope and a leak flag."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["LeakRule", "MemoryTrend", "memory_trends"]

RSS_METRIC = "process_rss_bytes"


@dataclass(frozen=True)
class LeakRule:
    """When a process's memory counts as leaking: its RSS grows steadily, i.e. the least-squares slope
    is at least ``min_slope_mb_per_min``, the line fits (r² ≥ ``min_r2``) and the RSS grew by at least
    ``min_growth_mb`` from the first to the last sample — all three."""

    min_slope_mb_per_min: float = 1.0
    min_r2: float = 0.6
    min_growth_mb: float = 5.0

    def describe(self) -> str:
        """The rule with its thresholds, in one line."""
        return (
            f"leak suspected when RSS grows steadily: slope ≥ {self.min_slope_mb_per_min:g} MiB/min and "
            f"r² ≥ {self.min_r2:g} (straight-line fit) and growth ≥ {self.min_growth_mb:g} MiB (last − first sample)"
        )

    def verdict(self, slope_mb_per_min: float, r2: float, growth_mb: float) -> tuple[bool, str]:
        """``(leak suspected, why)``: every condition with its value against its threshold."""
        checks = [
            (
                slope_mb_per_min >= self.min_slope_mb_per_min,
                "slope",
                slope_mb_per_min,
                self.min_slope_mb_per_min,
                " MiB/min",
            ),
            (r2 >= self.min_r2, "r²", r2, self.min_r2, ""),
            (growth_mb >= self.min_growth_mb, "growth", growth_mb, self.min_growth_mb, " MiB"),
        ]
        leak = all(ok for ok, *_ in checks)
        shown = checks if leak else [c for c in checks if not c[0]]
        why = ", ".join(
            f"{name} {value:+.2f} {'≥' if ok else '<'} {limit:g}{unit}" for ok, name, value, limit, unit in shown
        )
        return leak, ("leak suspected: " if leak else "no leak: ") + why

    def to_dict(self) -> dict[str, float]:
        """Plain dict of the thresholds."""
        return asdict(self)


@dataclass
class MemoryTrend:
    """Least-squares line through one process's RSS samples.

    Attributes:
        target: the server / router name.
        samples: number of RSS samples.
        start_mb, end_mb, growth_mb: first and last sample, and their difference (MiB).
        slope_mb_per_min: fitted slope (MiB per minute).
        r2: coefficient of determination of the fit (1 = perfectly linear growth).
        leak_suspected: slope ≥ ``min_slope_mb_per_min`` and r2 ≥ ``min_r2`` and growth ≥ ``min_growth_mb``
            (:class:`LeakRule`).
        verdict: :meth:`LeakRule.verdict`'s explanation: the conditions met (leak) or missed (no leak).
    """

    target: str
    samples: int
    start_mb: float
    end_mb: float
    growth_mb: float
    slope_mb_per_min: float
    r2: float
    leak_suspected: bool
    verdict: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain dict."""
        return asdict(self)


def _fit(t_s: np.ndarray, mb: np.ndarray) -> tuple[float, float]:
    if len(t_s) < 3 or float(np.ptp(t_s)) == 0.0:
        return 0.0, 0.0
    slope, intercept = np.polyfit(t_s, mb, 1)
    pred = slope * t_s + intercept
    ss_res = float(np.sum((mb - pred) ** 2))
    ss_tot = float(np.sum((mb - mb.mean()) ** 2))
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 0.0
    return float(slope) * 60.0, r2


def memory_trends(
    timeseries: pd.DataFrame, min_slope_mb_per_min: float = 1.0, min_r2: float = 0.6, min_growth_mb: float = 5.0
) -> list[MemoryTrend]:
    """One :class:`MemoryTrend` per target that has ``process_rss_bytes`` samples in ``timeseries``
    (the collector's long format: ``t_s``, ``target``, ``metric``, ``value``), judged by the
    :class:`LeakRule` of the three thresholds."""
    rule = LeakRule(min_slope_mb_per_min, min_r2, min_growth_mb)
    if timeseries.empty or "metric" not in timeseries:
        return []
    rss = timeseries[timeseries["metric"] == RSS_METRIC]
    out = []
    for target, grp in rss.groupby("target", sort=True):
        grp = grp.sort_values("t_s")
        t_s = grp["t_s"].to_numpy(dtype=float)
        mb = grp["value"].to_numpy(dtype=float) / 2**20
        slope, r2 = _fit(t_s, mb)
        growth = float(mb[-1] - mb[0]) if len(mb) else math.nan
        leak, verdict = rule.verdict(slope, r2, growth)
        out.append(MemoryTrend(str(target), len(mb), float(mb[0]), float(mb[-1]), growth, slope, r2, leak, verdict))
    return out
