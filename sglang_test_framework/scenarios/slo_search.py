"""Highest request rate that meets SLOs, and only at steady state.

Each probe is a load sized by time (at least ``min_duration_s`` and ``min_requests``), measured over the
steady-state window (``measure_window: auto``), and passes when its SLO attainment reaches the target
*and* the server was not over-saturated (metrics/saturation.py). The rate doubles until the server
saturates (or two probes in a row miss the SLOs); the lowest failing rate is probed again when it failed
without saturating; then the bracket is bisected and the answer probed again. A rate's verdict is the
majority of its probes, and contradicting evidence (a higher rate passed although a lower one failed, or
a tie) is probed again before bisecting further.
One server serves every probe; the search writes into its own directory, each probe into
``probes/<NN>-rate-<r>/`` (scenarios/probe.py).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..config.node_config import NodeConfig
from ..config.search_config import SLOSearchConfig
from ..fileio import write_json_atomic
from ..servers.manager import kill_all_processes
from .probe import ProbeOutcome, ProbeSeries, probe_config, probe_series
from .run_dir import RunStatus
from .signals import run_with_signals

__all__ = ["RateProbe", "SLOSearchResult", "find_max_rate", "find_max_rate_async"]

logger = logging.getLogger(__name__)

RESULT_FILE = "slo_search.json"
GROWTH_MISSES = 2
"""Growth stops after this many probes in a row missed the SLOs (or at the first over-saturated one)."""


@dataclass
class RateProbe:
    """One probe: target rate, what was measured over its window, and the verdict with its reason."""

    request_rate: float
    attainment: float
    request_throughput: float
    """Achieved rate (req/s): successful completions in the window per second."""
    request_goodput: float
    """Requests in the window that met every SLO, per second of the window."""
    passed: bool
    offered_rate: float | None = None
    saturated: bool | None = None
    reason: str = ""
    duration_s: float = 0.0
    requests: int = 0
    seed: int = 0
    output_dir: str = ""


@dataclass
class SLOSearchResult:
    """The best rate that met the SLOs at steady state (0.0 if even the lowest probe failed), its goodput,
    the server's capacity as the saturated probes measured it, and every probe in the order run."""

    slos_ms: dict[str, float]
    target_attainment: float
    best_rate: float
    probes: list[RateProbe] = field(default_factory=list)
    best_goodput: float | None = None
    capacity_rate: float | None = None
    monotonic: bool = True
    notes: list[str] = field(default_factory=list)
    output_dir: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for JSON)."""
        out = asdict(self)
        out["output_dir"] = str(self.output_dir) if self.output_dir else None
        return out

    def to_text(self) -> str:
        """The probes as a table, then the answer (goodput next to the rate) and the notes."""
        head = f"{'probe':>5}  {'rate':>9}  {'dur s':>6}  {'reqs':>5}  {'offered':>8}  {'achieved':>8}  {'goodput':>8}"
        lines = [head + "  attain.  satur.  result"]
        for i, p in enumerate(self.probes, 1):
            offered = f"{p.offered_rate:8.2f}" if p.offered_rate is not None else f"{'n/a':>8}"
            saturated = {True: "YES", False: "no", None: "n/a"}[p.saturated]
            lines.append(
                f"{i:>5}  {p.request_rate:9.3f}  {p.duration_s:6.1f}  {p.requests:>5}  {offered}  "
                f"{p.request_throughput:8.2f}  {p.request_goodput:8.2f}  {p.attainment:6.1%}  {saturated:>6}  "
                f"{'PASS' if p.passed else 'FAIL'}: {p.reason}"
            )
        slos = " ".join(f"{k}:{v:g}ms" for k, v in self.slos_ms.items())
        goodput = f" (goodput {self.best_goodput:.2f} req/s)" if self.best_goodput is not None else ""
        lines.append(
            f"max rate meeting {slos} at ≥{self.target_attainment:.0%} without saturating: "
            f"{self.best_rate:.2f} req/s{goodput}"
        )
        if self.capacity_rate is not None:
            lines.append(f"server capacity ≈ {self.capacity_rate:.2f} req/s (achieved rate of the saturated probes)")
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)


def _rate_probe(outcome: ProbeOutcome, search: SLOSearchConfig) -> RateProbe:
    goodput = outcome.goodput or {}
    attainment = float(goodput.get("slo_attainment") or 0.0)
    saturated = outcome.summary.get("saturated")
    met = attainment >= search.target_attainment
    if saturated is True:
        reason = f"over-saturated ({outcome.summary.get('saturation_reason')})"
    elif not met:
        reason = f"attainment {attainment:.1%} < {search.target_attainment:.0%}"
    else:
        reason = f"attainment {attainment:.1%} ≥ {search.target_attainment:.0%}, keeps up"
        reason += "" if saturated is False else " (saturation not judged: window too short)"
    window = outcome.summary.get("measure_window") or {}
    return RateProbe(
        request_rate=outcome.rate,
        attainment=attainment,
        request_throughput=outcome.value("achieved_rate") or 0.0,
        request_goodput=float(goodput.get("request_goodput") or 0.0),
        passed=met and saturated is not True,
        offered_rate=outcome.value("offered_rate"),
        saturated=saturated if isinstance(saturated, bool) else None,
        reason=reason,
        duration_s=outcome.duration_s,
        requests=int(window.get("requests") or 0),
        seed=outcome.seed,
        output_dir=str(outcome.output_dir),
    )


class _Search:
    """The search's state: every probe, per-rate majority verdicts, the bracket."""

    def __init__(self, series: ProbeSeries, search: SLOSearchConfig, result: SLOSearchResult) -> None:
        self.series, self.search, self.result = series, search, result

    def _at(self, rate: float) -> list[RateProbe]:
        return [p for p in self.result.probes if p.request_rate == rate]

    def verdict(self, rate: float) -> bool | None:
        """Majority of the probes at ``rate``; None for a tie."""
        votes = [p.passed for p in self._at(rate)]
        passed, failed = votes.count(True), votes.count(False)
        return None if passed == failed else passed > failed

    def _can_reprobe(self, rate: float) -> bool:
        return len(self._at(rate)) <= self.search.max_reprobes

    async def probe(self, rate: float) -> RateProbe:
        seed = self.series.base.seed + len(self._at(rate))  # a re-probe draws a fresh sample
        outcome = await self.series.run(rate, seed=seed, slos_ms=self.search.slos_ms)
        probe = _rate_probe(outcome, self.search)
        self.result.probes.append(probe)
        logger.info("rate %.3f req/s: %s — %s", rate, "PASS" if probe.passed else "FAIL", probe.reason)
        return probe

    def bracket(self) -> tuple[float, float | None]:
        """(highest passing rate below every failing rate or 0, lowest failing rate or None); a tie fails."""
        rates = sorted({p.request_rate for p in self.result.probes})
        failing = [r for r in rates if self.verdict(r) is not True]
        hi = failing[0] if failing else None
        lo = max((r for r in rates if self.verdict(r) is True and (hi is None or r < hi)), default=0.0)
        return lo, hi

    def _contradiction(self) -> tuple[float, float] | None:
        rates = sorted({p.request_rate for p in self.result.probes})
        failing = [r for r in rates if self.verdict(r) is False]
        passing = [r for r in rates if self.verdict(r) is True and failing and r > failing[0]]
        return (failing[0], passing[-1]) if passing else None

    async def settle(self) -> None:
        """Probe again until every verdict is decided and monotonic, or the re-probe budget is spent."""
        while True:
            tied = [r for r in sorted({p.request_rate for p in self.result.probes}) if self.verdict(r) is None]
            tied = [r for r in tied if self._can_reprobe(r)]
            if tied:
                await self.probe(tied[0])
                continue
            pair = self._contradiction()
            if pair is None:
                return
            again = [r for r in pair if self._can_reprobe(r)]
            if not again:
                self.result.monotonic = False
                self.result.notes.append(
                    f"non-monotonic evidence: {pair[1]:g} req/s passed although {pair[0]:g} req/s failed after "
                    f"{self.search.max_reprobes} re-probes; the answer stays below {pair[0]:g} req/s"
                )
                return
            logger.info("contradiction: %g req/s failed but %g req/s passed; probing again", *pair)
            for rate in again:
                await self.probe(rate)

    async def _grow(self) -> None:
        """Double the rate until a probe over-saturates the server, two probes in a row miss the SLOs, or
        ``max_rate`` ran (an SLO miss alone does not stop the growth at once, so a fluke shows up as a
        higher rate passing)."""
        s = self.search
        rate, misses = s.start_rate, 0
        while True:
            probe = await self.probe(rate)
            misses = 0 if probe.passed else misses + 1
            if probe.saturated or misses >= GROWTH_MISSES:
                return
            if rate >= s.max_rate:
                if all(p.passed for p in self.result.probes):
                    self.result.notes.append(f"every probe up to max_rate ({s.max_rate:g} req/s) passed: a lower bound")
                return
            rate = min(rate * 2, s.max_rate)

    async def _confirm_lowest_failure(self) -> None:
        """Probe the lowest failing rate once more when it failed the SLOs without saturating (a single
        unlucky probe would otherwise cap the answer)."""
        _, hi = self.bracket()
        if hi is None or not self._can_reprobe(hi) or len(self._at(hi)) > 1:
            return
        if not any(p.saturated for p in self._at(hi)):
            await self.probe(hi)

    async def run(self) -> None:
        """Grow, confirm the bracket, settle contradictions, bisect, confirm the answer."""
        s = self.search
        await self._grow()
        await self._confirm_lowest_failure()
        await self.settle()
        for _ in range(s.bisect_steps):
            lo, hi = self.bracket()
            if hi is None or hi - lo <= 1e-3 * hi:
                break
            await self.probe((lo + hi) / 2 if lo > 0 else hi / 2)
            await self.settle()
        lo, _ = self.bracket()
        if s.confirm and lo > 0 and len(self._at(lo)) == 1:
            await self.probe(lo)
            await self.settle()
        self._conclude()

    def _conclude(self) -> None:
        r = self.result
        r.best_rate, _ = self.bracket()
        at_best = [p.request_goodput for p in self._at(r.best_rate) if p.passed]
        r.best_goodput = sum(at_best) / len(at_best) if at_best else None
        saturated = [p.request_throughput for p in r.probes if p.saturated]
        r.capacity_rate = max(saturated) if saturated else None
        if r.best_rate == 0.0:
            r.notes.append("even the lowest probe failed: lower start_rate or relax the SLOs")
        if r.capacity_rate is not None and r.best_rate > 1.1 * r.capacity_rate:
            r.notes.append("the answer is above the capacity the saturated probes achieved: rerun with longer probes")


async def find_max_rate_async(
    config: NodeConfig,
    slos_ms: dict[str, float],
    target_attainment: float = 0.9,
    start_rate: float = 1.0,
    max_rate: float = 1024.0,
    bisect_steps: int = 4,
    *,
    search: SLOSearchConfig | None = None,
) -> SLOSearchResult:
    """Coroutine form of :func:`find_max_rate`."""
    s = search or SLOSearchConfig.build(
        source="SLO search",
        slos_ms=slos_ms,
        target_attainment=target_attainment,
        start_rate=start_rate,
        max_rate=max_rate,
        bisect_steps=bisect_steps,
        output_dir=config.output_dir,
    )
    probe_config(config, s, s.start_rate, s.output_dir / "probes" / "check")  # a bad base fails before anything runs
    result = SLOSearchResult(dict(s.slos_ms), s.target_attainment, 0.0, output_dir=s.output_dir)
    dump = {"search": s.model_dump(mode="json"), "base": config.model_dump(mode="json")}
    async with probe_series(config, s, "slo-search", dump) as series:
        status: RunStatus = "failed"
        error: str | None = None
        try:
            await _Search(series, s, result).run()
            status = "completed"
        except asyncio.CancelledError:
            status = "interrupted"
            raise
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            write_json_atomic(s.output_dir / RESULT_FILE, {**result.to_dict(), "status": status}, one_line=True)
            series.directory.finish(status, probes=len(result.probes), **({"error": error} if error else {}))
    return result


def find_max_rate(
    config: NodeConfig,
    slos_ms: dict[str, float],
    target_attainment: float = 0.9,
    start_rate: float = 1.0,
    max_rate: float = 1024.0,
    bisect_steps: int = 4,
    *,
    search: SLOSearchConfig | None = None,
) -> SLOSearchResult:
    """The highest request rate (req/s) whose probes meet the SLOs at steady state: SLO attainment
    (bench_serving's definition: share of the window's requests that succeeded and met every SLO) ≥
    ``target_attainment`` and the server not over-saturated. ``slos_ms`` keys: ttft, tpot, e2el.

    ``search`` (:class:`SLOSearchConfig`) gives every setting — probe length (``min_duration_s``,
    ``min_requests``), re-probes, the search directory; without it the other arguments are used with the
    default probe length and ``config.output_dir`` as the search's directory. The search claims that
    directory like a run (an earlier run there is set aside) and writes ``slo_search.json`` and one run
    directory per probe under ``probes/``.
    """
    return run_with_signals(
        find_max_rate_async(config, slos_ms, target_attainment, start_rate, max_rate, bisect_steps, search=search),
        escalate=kill_all_processes,
    )
