"""The SLO search's decisions, against scripted probe verdicts (no server): growth, confirmation,
contradictions, bisection and the answer."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from sglang_test_framework.config.search_config import SLOSearchConfig
from sglang_test_framework.scenarios.probe import ProbeOutcome, ProbeSeries
from sglang_test_framework.scenarios.slo_search import SLOSearchResult, _Search

BASE_SEED = 42
# (rate, seed) -> (passes the SLOs, over-saturated)
Oracle = Callable[[float, int], tuple[bool, bool]]


@dataclass
class _Base:
    seed: int = BASE_SEED


@dataclass
class FakeSeries:
    """Stands in for a ProbeSeries: answers each probe from an oracle and logs (rate, seed)."""

    oracle: Oracle
    base: _Base = field(default_factory=_Base)
    calls: list[tuple[float, int]] = field(default_factory=list)

    async def run(
        self, rate: float, *, seed: int | None = None, slos_ms: Mapping[str, float] | None = None, label: str = ""
    ) -> ProbeOutcome:
        used = BASE_SEED if seed is None else seed
        self.calls.append((rate, used))
        meets, saturated = self.oracle(rate, used)
        summary: dict[str, Any] = {
            "saturated": saturated,
            "saturation_reason": "scripted",
            "achieved_rate": min(rate, 9.0),
            "offered_rate": rate,
            "measure_window": {"requests": 100},
        }
        goodput = {"slo_attainment": 1.0 if meets else 0.5, "request_goodput": rate if meets else rate / 2}
        return ProbeOutcome(len(self.calls), rate, used, 20.0, Path("p"), summary, goodput)


def search(oracle: Oracle, **settings: Any) -> tuple[SLOSearchResult, FakeSeries]:
    import asyncio

    config = SLOSearchConfig(slos_ms={"e2el": 1000.0}, **{"start_rate": 1.0, "bisect_steps": 2, **settings})
    result = SLOSearchResult(dict(config.slos_ms), config.target_attainment, 0.0)
    fake = FakeSeries(oracle)
    asyncio.run(_Search(cast(ProbeSeries, fake), config, result).run())
    return result, fake


def monotone(limit: float, saturates_at: float = 9.0) -> Oracle:
    return lambda rate, seed: (rate <= limit and rate < saturates_at, rate >= saturates_at)


def test_monotone_evidence_grows_until_saturation_confirms_and_bisects() -> None:
    result, fake = search(monotone(5.5), bisect_steps=4)
    rates = [rate for rate, _ in fake.calls]
    # 1, 2, 4 pass; 8 misses the SLOs (not saturated), 16 saturates → growth stops; 8 is confirmed;
    # bisection 6 (fail), 5 (pass), 5.5 (pass), 5.75 (fail); the answer 5.5 is probed again.
    assert rates == [1.0, 2.0, 4.0, 8.0, 16.0, 8.0, 6.0, 5.0, 5.5, 5.75, 5.5]
    assert fake.calls[5] == (8.0, BASE_SEED + 1) and fake.calls[-1] == (5.5, BASE_SEED + 1)  # fresh samples
    assert result.best_rate == 5.5 and result.monotonic
    assert result.best_goodput == 5.5
    assert result.capacity_rate == 9.0  # the saturated probe's achieved rate


def test_growth_stops_at_the_first_saturated_probe() -> None:
    result, fake = search(monotone(100.0, saturates_at=3.0), bisect_steps=1)
    assert [rate for rate, _ in fake.calls] == [1.0, 2.0, 4.0, 3.0, 2.0]  # 4 saturates: no 8
    assert result.best_rate == 2.0


def test_a_single_unlucky_failure_is_outvoted_instead_of_capping_the_answer() -> None:
    def fluke(rate: float, seed: int) -> tuple[bool, bool]:
        return (rate <= 6.0 and (rate, seed) != (4.0, BASE_SEED), rate >= 12.0)

    result, fake = search(fluke, bisect_steps=2)
    at_4 = [seed for rate, seed in fake.calls if rate == 4.0]
    assert at_4 == [BASE_SEED, BASE_SEED + 1, BASE_SEED + 2]  # fail, pass → tie → a third probe decides
    assert result.best_rate == 6.0 and result.monotonic


def test_a_higher_rate_passing_after_a_lower_failed_is_probed_again() -> None:
    def contradiction(rate: float, seed: int) -> tuple[bool, bool]:
        return (rate <= 6.0 and (rate, seed) != (2.0, BASE_SEED), rate >= 12.0)

    result, fake = search(contradiction, bisect_steps=2)
    assert [rate for rate, _ in fake.calls][:4] == [1.0, 2.0, 4.0, 8.0]  # 2 failed, 4 passed: growth went on
    assert [seed for rate, seed in fake.calls if rate == 2.0] == [BASE_SEED, BASE_SEED + 1, BASE_SEED + 2]
    assert result.best_rate == 6.0 and result.monotonic


def test_evidence_that_stays_contradictory_keeps_the_answer_below_the_failure() -> None:
    def broken(rate: float, seed: int) -> tuple[bool, bool]:
        return (rate <= 6.0 and rate != 2.0, rate >= 12.0)

    result, fake = search(broken, bisect_steps=2, max_reprobes=2)
    assert sum(1 for rate, _ in fake.calls if rate == 2.0) == 3
    assert not result.monotonic and any("non-monotonic" in note for note in result.notes)
    assert result.best_rate < 2.0


def test_every_rate_passing_up_to_max_rate_is_reported_as_a_lower_bound() -> None:
    result, fake = search(monotone(1e9, saturates_at=1e9), max_rate=8.0, confirm=False)
    assert [rate for rate, _ in fake.calls] == [1.0, 2.0, 4.0, 8.0]
    assert result.best_rate == 8.0 and any("lower bound" in note for note in result.notes)


def test_even_the_start_rate_failing_bisects_downwards() -> None:
    result, fake = search(monotone(0.3, saturates_at=0.5), start_rate=1.0, bisect_steps=3, confirm=False)
    assert [rate for rate, _ in fake.calls] == [1.0, 0.5, 0.25, 0.375]
    assert result.best_rate == 0.25
