"""The SMG policy study: every SMG policy on the same seeded shared-prefix workload (and a trace workload
when given), behind the real SMG, with fresh workers per arm. One table, one JSON file and one plot:
cache hit rate, TTFT p50/p99, throughput and load imbalance (CV of requests per worker) per policy, plus
the retries / circuit-breaker / overload settings every arm ran with (``sglang-test policy-study``)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..config.router_config import SMG_POLICIES, default_implementation
from ..config.routing_config import RoutingConfig
from ..errors import ConfigError
from ..fileio import write_text_atomic
from ..load.request_generator import RequestGenerator
from ..metrics.per_worker import load_imbalance_cv
from ..records import Request
from ..results import RunResults
from ..servers.manager import kill_all_processes
from .arms import summary_value
from .signals import run_with_signals

if TYPE_CHECKING:
    from .routing import RoutingTest

__all__ = ["KEYED_POLICIES", "STUDY_COLUMNS", "PolicyStudy", "run_policy_study"]

KEYED_POLICIES = ("manual", "consistent_hashing")
"""Policies that route by ``X-SMG-Routing-Key``: in the study their requests carry one key per prefix
group (trace: per session/group id when the trace has one), every other arm sends no key (prefix_hash
would hash the key instead of the prompt)."""

STUDY_COLUMNS = (
    "completed",
    "failed",
    "cache_hit_rate",
    "p50_ttft",
    "p99_ttft",
    "request_throughput",
    "output_throughput",
    "load_imbalance_cv",
    "load_imbalance",
)


@dataclass
class PolicyStudy:
    """``table``: one row per (workload, policy); ``results[workload][policy]``: each arm's RunResults;
    ``router_settings``: the resilience settings every arm ran with."""

    table: pd.DataFrame
    results: dict[str, dict[str, RunResults]]
    router_settings: dict[str, Any]
    output_dir: Path
    files: dict[str, Path] = field(default_factory=dict)

    def to_text(self) -> str:
        """The table and the settings, aligned plain text."""
        from ..analysis.metric_text import flat_settings, metric_rows_text

        settings = flat_settings(self.router_settings)
        return f"{metric_rows_text(self.table)}\nrouter settings (every arm):\n{settings}"


def _keyed(requests: Sequence[Request]) -> list[Request]:
    """The requests with a routing key per group (requests that already have a key keep it)."""
    out = []
    for req in requests:
        if req.routing_key is None and req.group_id is not None:
            req = dataclasses.replace(req, routing_key=f"group-{req.group_id}")
        out.append(req)
    return out


def study_row(workload: str, policy: str, res: RunResults) -> dict[str, Any]:
    """One row of the study table from one arm's results."""
    s = res.summary
    row: dict[str, Any] = {"workload": workload, "policy": policy}
    row.update({col: summary_value(s, col) for col in STUDY_COLUMNS})
    row["load_imbalance_cv"] = load_imbalance_cv(res.per_worker) if res.per_worker is not None else None
    row["routing_key"] = "group" if policy in KEYED_POLICIES else "none"
    attribution = s.get("router_attribution") or {}
    row["attribution_mismatches"] = attribution.get("mismatched")
    return row


async def _run_workload(
    test_cls: type[RoutingTest], config: RoutingConfig, policies: Sequence[str], base_dir: Path
) -> dict[str, RunResults]:
    requests = RequestGenerator(seed=config.seed).generate_requests(config)
    keyed = _keyed(requests)
    results: dict[str, RunResults] = {}
    for policy in policies:
        arm = config.with_updates(routing_policy=policy, name=policy, output_dir=base_dir / policy)
        results[policy] = await test_cls(arm).run_async(keyed if policy in KEYED_POLICIES else requests)
    return results


def _workloads(config: RoutingConfig, trace_path: Path | None) -> dict[str, RoutingConfig]:
    workloads = {"shared-prefix": config.with_updates(dataset_name="generated-shared-prefix", dataset_path=None)}
    if trace_path is not None:
        if not trace_path.is_file():
            raise ConfigError(f"trace_path: {trace_path} does not exist; pass an existing trace file")
        workloads["trace"] = config.with_updates(dataset_name="trace", dataset_path=trace_path)
    return workloads


def run_policy_study(
    test_cls: type[RoutingTest],
    config: RoutingConfig,
    policies: Sequence[str] = SMG_POLICIES,
    trace_path: Path | None = None,
    output_dir: Path | None = None,
) -> PolicyStudy:
    """Blocking: run every policy on each workload behind SMG; write ``policy_study.csv`` / ``.txt`` /
    ``.json``, ``plots/policy_study.png`` and one comparison directory per workload.

    Raises:
        ConfigError: SMG is not installed or not selected, a policy is not an SMG policy, the trace file
            is missing.
    """
    from ..analysis.policy_study_plots import plot_policy_study
    from ..analysis.report import common_settings_line

    impl = config.router.implementation or default_implementation()
    if impl != "smg":
        raise ConfigError(
            f"router.implementation: the policy study runs SMG's policies, not {impl!r}; "
            "pip install smg (a dependency of this package) or set --router-implementation smg"
        )
    bad = [p for p in policies if p not in SMG_POLICIES]
    if bad or not policies:
        raise ConfigError(f"policies: {bad or 'none'} — give SMG policies: {', '.join(SMG_POLICIES)}")
    config = config.with_updates(router=config.router.model_copy(update={"implementation": "smg"}), router_impl="auto")
    base_dir = output_dir or config.output_dir
    base_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, RunResults]] = {}
    for name, workload in _workloads(config, trace_path).items():
        results[name] = run_with_signals(
            _run_workload(test_cls, workload, policies, base_dir / name), escalate=kill_all_processes
        )
    rows = [study_row(w, p, res) for w, arms in results.items() for p, res in arms.items()]
    table = pd.DataFrame(rows).set_index(["workload", "policy"])
    settings = config.router.resilience_settings("smg")
    study = PolicyStudy(table, results, settings, base_dir)
    study.files["csv"] = base_dir / "policy_study.csv"
    table.to_csv(study.files["csv"])
    study.files["text"] = write_text_atomic(base_dir / "policy_study.txt", study.to_text() + "\n")
    payload = {"router_settings": settings, "policies": list(policies), "rows": _json_rows(rows)}
    study.files["json"] = write_text_atomic(base_dir / "policy_study.json", json.dumps(payload, indent=2) + "\n")
    if config.write_plots:
        contexts = [res.context for arms in results.values() for res in arms.values()]
        plot_path = base_dir / "plots" / "policy_study.png"
        study.files["plot"] = plot_policy_study(table, plot_path, common_settings_line(contexts))
    return study


def _json_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def clean(value: Any) -> Any:
        if isinstance(value, float) and value != value:  # NaN → null
            return None
        return value

    return [{k: clean(v) for k, v in row.items()} for row in rows]
