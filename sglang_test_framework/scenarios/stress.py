"""Stress presets (the seed suites' scenarios) with a success-rate verdict (docs/stress.md).

Each preset is a NodeConfig fragment: server flags, workload and load shape. ``sglang-test stress
--preset NAME`` layers the preset under the user's ``--config`` YAML and flags (they win), scales its
size by ``--scale``, runs a NodeTest (a RoutingTest with ``--num-gpus`` or other routing flags) and ends
with one ``PASS`` / ``FAIL`` line.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config.node_config import NodeConfig
from ..config.routing_config import RoutingConfig
from ..config.stress_config import PresetName, StressOptions
from ..errors import RunError
from ..fileio import write_json_atomic
from ..results import RunResults
from .node import NodeTest

__all__ = ["PRESETS", "VERDICT_FILE", "StressPreset", "StressResult", "Verdict", "judge", "preset_values", "run_stress"]

VERDICT_FILE = "verdict.json"


@dataclass(frozen=True)
class StressPreset:
    """A named stress scenario: what it checks and the config fields it sets."""

    name: PresetName
    description: str
    values: Mapping[str, Any]


_SHORT_CHAT = {"random_input_len": 256, "random_output_len": 128, "random_range_ratio": 0.5}

PRESETS: dict[str, StressPreset] = {
    p.name: p
    for p in (
        StressPreset(
            "high-concurrency",
            "64 virtual users (closed loop: each sends its next request when the last one finished) against a "
            "server capped at 32 running requests, so half of them always queue on the server",
            {
                "dataset_name": "random",
                **_SHORT_CHAT,
                "virtual_users": 64,
                "num_prompts": 640,
                "max_running_requests": 32,
            },
        ),
        StressPreset(
            "sustained-load",
            "a steady Poisson load of 16 req/s for 30 s after a 5 s ramp-up; the summary covers the steady part",
            {
                "dataset_name": "random",
                "random_input_len": 512,
                "random_output_len": 128,
                "random_range_ratio": 0.5,
                "request_rate": 16.0,
                "duration_s": 30.0,
                "ramp_up_s": 5.0,
                "measure_window": "auto",
            },
        ),
        StressPreset(
            "burst-traffic",
            "bursts on a base load (rate stages): 5 req/s for 4 s, then three cycles of 60 req/s for 2 s and "
            "5 req/s for 4 s, then 5 req/s for 4 s to recover, against a server capped at 32 running requests",
            {
                "dataset_name": "random",
                **_SHORT_CHAT,
                "stages": [
                    {"kind": "constant", "value": 5.0, "duration_s": 4.0},
                    {"kind": "burst", "low": 5.0, "high": 60.0, "on_s": 2.0, "off_s": 4.0, "duration_s": 18.0},
                    {"kind": "constant", "value": 5.0, "duration_s": 4.0},
                ],
                "max_running_requests": 32,
            },
        ),
        StressPreset(
            "mixed-workload",
            "70 % short chat, 20 % long context (6k-token prompts), 10 % shared-prefix questions (Zipf over 4 "
            "system prompts) on one Poisson process at 8 req/s for 30 s; metrics per workload",
            {
                "dataset_name": "random",  # the base the components start from
                "request_rate": 8.0,
                "duration_s": 30.0,
                "workload_mix": [
                    {"name": "short-chat", "weight": 70, "dataset_name": "random", **_SHORT_CHAT},
                    {
                        "name": "long-context",
                        "weight": 20,
                        "dataset_name": "random",
                        "random_input_len": 6000,
                        "random_output_len": 64,
                        "random_range_ratio": 0.8,
                    },
                    {
                        "name": "shared-prefix",
                        "weight": 10,
                        "dataset_name": "generated-shared-prefix",
                        "gsp_group_distribution": "zipf",
                        "gsp_num_groups": 4,
                        "gsp_system_prompt_len": 2048,
                        "gsp_question_len": 64,
                        "gsp_output_len": 64,
                    },
                ],
            },
        ),
    )
}

_SIZE_FIELDS = ("num_prompts", "duration_s")
_STAGE_TIMES = ("duration_s", "on_s", "off_s", "period_s")


def preset_values(name: str, scale: float = 1.0, given: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The preset's fields with its size multiplied by ``scale``: ``num_prompts``, or ``duration_s`` (and
    the ramp-up with it), or every time of its ``stages`` (the same schedule, compressed or stretched).

    ``given`` are the user's own values: when they set a size field, the preset's size fields are left
    out so theirs decides alone. Virtual users are capped at the request count (a user without a request
    would idle).
    """
    given = given or {}
    values = copy.deepcopy(dict(PRESETS[name].values))
    if set(given) & set(_SIZE_FIELDS):
        for key in _SIZE_FIELDS:
            values.pop(key, None)
    else:
        if "num_prompts" in values:
            values["num_prompts"] = max(1, math.ceil(values["num_prompts"] * scale))
        for key in ("duration_s", "ramp_up_s"):
            if key in values:
                values[key] = values[key] * scale
        for stage in values.get("stages", []):  # the same schedule in compressed (or stretched) time
            for key in _STAGE_TIMES:
                if key in stage:
                    stage[key] = stage[key] * scale
    count = given.get("num_prompts", values.get("num_prompts"))
    if "virtual_users" in values and "virtual_users" not in given and isinstance(count, int):
        values["virtual_users"] = max(1, min(values["virtual_users"], count))
    return values


@dataclass
class Verdict:
    """PASS when the run's success rate (completed ÷ sent, the whole run) is at least the threshold and
    no server exited during the run."""

    preset: str
    passed: bool
    success_rate: float | None
    completed: int
    total: int
    threshold: float
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        """The verdict on one line, e.g. ``STRESS burst-traffic: PASS (success rate 100.0 % ≥ 80.0 %: …)``."""
        rate = f"{self.success_rate * 100:.1f} %" if self.success_rate is not None else "n/a"
        sign = "≥" if self.success_rate is not None and self.success_rate >= self.threshold else "<"
        text = f"success rate {rate} {sign} {self.threshold * 100:.1f} %: {self.completed} of {self.total} completed"
        extra = "; " + "; ".join(self.problems) if self.problems else ""
        return f"STRESS {self.preset}: {'PASS' if self.passed else 'FAIL'} ({text}{extra})"

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (``verdict.json``)."""
        return {
            "preset": self.preset,
            "verdict": "PASS" if self.passed else "FAIL",
            "success_rate": self.success_rate,
            "completed": self.completed,
            "total_requests": self.total,
            "min_success_rate": self.threshold,
            "problems": list(self.problems),
        }


def judge(preset: str, summary: Mapping[str, Any], threshold: float) -> Verdict:
    """The verdict of a run's summary (its ``run_totals`` when a measurement window applied)."""
    counts = summary.get("run_totals") or summary
    total = int(counts.get("total_requests") or 0)
    completed = int(counts.get("completed") or 0)
    rate = completed / total if total else None
    problems = [
        f"{e['name']} exited during the run with code {e['exit_code']}" for e in summary.get("server_exits") or []
    ]
    if total == 0:
        problems.append("no request was sent")
    passed = rate is not None and rate >= threshold and not problems
    return Verdict(preset, passed, rate, completed, total, threshold, problems)


@dataclass
class StressResult:
    """The run (None when it could not start its load) and the verdict."""

    options: StressOptions
    results: RunResults | None
    verdict: Verdict
    files: dict[str, Path] = field(default_factory=dict)


def _run_test(config: NodeConfig | RoutingConfig) -> RunResults:
    """The run (NodeTest, or RoutingTest for a fleet), its report printed and its plots written."""
    if isinstance(config, RoutingConfig):
        from .routing import RoutingTest

        routing = RoutingTest(config)
        results = routing.run()
        routing.visualize_results(results)
        return results
    node = NodeTest(config)
    results = node.run()
    node.analyze_results(results)
    return results


def _report_verdict(results: RunResults, verdict: Verdict) -> None:
    """Add the verdict to ``results.summary`` and rewrite the run's ``report.html`` (if it wrote one)
    with it on top."""
    from ..analysis.html_pages import write_run_report

    results.summary["stress_verdict"] = verdict.to_dict()
    if "report" in results.files:
        write_run_report(results, [path for key, path in results.files.items() if key.startswith("plot_")])


def run_stress(options: StressOptions, config: NodeConfig | RoutingConfig) -> StressResult:
    """Run ``config`` (built from :func:`preset_values` and the user's overrides) as a NodeTest — or a
    RoutingTest when it is a :class:`RoutingConfig` — and judge it. A load that cannot start because
    every warmup request failed is a FAIL, not an error.

    Raises:
        RunInterrupted: SIGINT/SIGTERM stopped the run (partial results are on disk).
    """
    try:
        results: RunResults | None = _run_test(config)
    except RunError as exc:
        results = None
        verdict = Verdict(options.preset, False, None, 0, 0, options.min_success_rate, [str(exc)])
    else:
        assert results is not None
        verdict = judge(options.preset, results.summary, options.min_success_rate)
        _report_verdict(results, verdict)
    outcome = StressResult(options, results, verdict)
    config.output_dir.mkdir(parents=True, exist_ok=True)
    outcome.files["verdict"] = write_json_atomic(config.output_dir / VERDICT_FILE, verdict.to_dict())
    return outcome
