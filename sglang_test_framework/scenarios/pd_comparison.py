"""PD vs co-located (docs/pd.md): the same seeded workload on the same number of simulated GPUs, once
disaggregated (``num_prefill`` prefill + ``num_decode`` decode workers behind SMG ``--pd-disaggregation``)
and once co-located (``(num_prefill + num_decode)`` regular workers behind SMG with the same routing
policy). The scenario behind ``sglang-test pd-compare``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..config.routing_config import RoutingConfig
from ..errors import ConfigError
from ..fileio import write_text_atomic
from ..results import RunResults
from ..servers.manager import kill_all_processes
from .arms import HEADLINE_COLUMNS, ArmComparison, run_arms, summary_value
from .signals import run_with_signals

if TYPE_CHECKING:
    from .routing import RoutingTest

__all__ = ["ARMS", "PD_COLUMNS", "PDComparison", "compare_pd_colocated", "pd_summary_text"]

ARMS = ("pd", "colocated")
PD_COLUMNS = (
    *HEADLINE_COLUMNS,
    "p50_itl",
    "p99_itl",
    "mean_tpot",
    "p99_tpot",
    "mean_server_latency",
    "p99_server_latency",
)


@dataclass
class PDComparison(ArmComparison):
    """One row per arm (``pd``, ``colocated``); ``results[arm]`` holds each arm's full RunResults."""

    def to_text(self) -> str:
        """Both arms side by side (metrics as rows), then the PD TTFT stages (p50 ms)."""
        from ..analysis.metric_text import side_by_side_text

        text = side_by_side_text(self.table)
        pd_lines = pd_summary_text(self.results["pd"].summary.get("pd") or {})
        return text + ("\n" + pd_lines if pd_lines else "")


def pd_summary_text(pd_summary: dict[str, Any]) -> str:
    """``summary["pd"]`` in two lines: TTFT stages (p50 ms), then utilisation and imbalance per role."""
    stages = [
        f"{k.removesuffix('_ms')} {v['p50']:.2f}"
        for k, v in pd_summary.items()
        if k.endswith("_ms") and isinstance(v, dict) and k not in ("client_ttft_ms", "other_ms")
    ]
    lines = ["PD TTFT stages (p50 ms): " + ", ".join(stages)] if stages else []
    util = pd_summary.get("utilisation") or {}
    imbalance = pd_summary.get("load_imbalance") or {}
    if util or imbalance:
        lines.append(
            f"PD utilisation (busy share): prefill {_share(util.get('prefill'))}, decode {_share(util.get('decode'))}; "
            f"load imbalance (max/mean, 1 = even): prefill {imbalance.get('prefill')}, decode {imbalance.get('decode')}"
        )
    return "\n".join(lines)


def _share(value: Any) -> str:
    return "n/a" if value is None else f"{100 * float(value):.1f}%"


def comparison_table(results: dict[str, RunResults]) -> pd.DataFrame:
    """Key metrics of each arm (rows = arms), with the number of workers and GPUs."""
    rows = []
    for arm, res in results.items():
        row: dict[str, Any] = {"arm": arm, "workers": res.summary.get("num_workers")}
        row.update({col: summary_value(res.summary, col) for col in PD_COLUMNS})
        rows.append(row)
    return pd.DataFrame(rows).set_index("arm")


def arm_configs(config: RoutingConfig, base_dir: Path) -> dict[str, RoutingConfig]:
    """The PD arm (``config`` itself) and the co-located arm on the same number of GPUs."""
    return {
        "pd": config.with_updates(name="pd", output_dir=base_dir / "pd"),
        "colocated": config.with_updates(
            num_prefill=0,
            num_decode=0,
            prefill_args=[],
            decode_args=[],
            num_gpus=config.num_gpus,
            name="colocated",
            output_dir=base_dir / "colocated",
        ),
    }


def compare_pd_colocated(
    test_cls: type[RoutingTest], config: RoutingConfig, output_dir: Path | None = None
) -> PDComparison:
    """Blocking: run both arms (fresh workers each), write ``comparison.csv``, ``comparison.txt`` and
    ``comparison.json`` (both summaries and the PD stages) into ``output_dir`` (default
    ``config.output_dir``)."""
    if not config.is_pd:
        raise ConfigError(
            "pd-compare: num_prefill / num_decode: set both (e.g. --num-prefill 1 --num-decode 1); the "
            "co-located arm gets the same number of GPUs"
        )
    base_dir = output_dir or config.output_dir
    base_dir.mkdir(parents=True, exist_ok=True)
    arms = arm_configs(config, base_dir)
    results = run_with_signals(run_arms(test_cls, arms["pd"], arms), escalate=kill_all_processes)
    table = comparison_table(results)
    comp = PDComparison(table, results, base_dir)
    comp.files["csv"] = write_text_atomic(base_dir / "comparison.csv", table.to_csv())
    comp.files["text"] = write_text_atomic(base_dir / "comparison.txt", comp.to_text() + "\n")
    payload = {
        "gpus": config.num_gpus,
        "num_prefill": config.num_prefill,
        "num_decode": config.num_decode,
        "routing_policy": config.routing_policy,
        "arms": {arm: {col: summary_value(res.summary, col) for col in PD_COLUMNS} for arm, res in results.items()},
        "pd_stages": results["pd"].summary.get("pd"),
        "result_dirs": {arm: str(res.output_dir) for arm, res in results.items()},
    }
    comp.files["json"] = write_text_atomic(base_dir / "comparison.json", json.dumps(payload, indent=2, default=str))
    if config.write_plots:
        from ..analysis.routing_plots import plot_latency_by_arm

        title = f"PD vs co-located on {config.num_gpus} GPUs: latency CDFs"
        plot = base_dir / "plots" / "pd_vs_colocated_latency.png"
        comp.files["plot"] = plot_latency_by_arm(results, plot, "arm", title)
    return comp
