"""The PD parts of a RoutingTest (docs/pd.md): bootstrap ports for the prefill workers, the worker lists
SMG gets in ``--pd-disaggregation`` mode, and the TTFT breakdown / per-role utilisation written with the
results (``summary["pd"]``, ``pd_breakdown.csv``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ..config.routing_config import RoutingConfig
from ..metrics.pd_breakdown import pd_breakdown, pd_summary, read_truth_rows
from ..metrics.per_worker import load_imbalance
from ..records import RequestRecord
from ..servers.manager import ServerManager
from ..servers.server import SGLangServer
from ..servers.smg import PdWorkers

__all__ = ["pd_bootstrap_ports", "pd_context", "pd_results", "pd_workers"]


def pd_bootstrap_ports(config: RoutingConfig, manager: ServerManager) -> list[int]:
    """One free port per prefill worker for its bootstrap server ([] when not PD)."""
    return [manager.allocate_port(config.host) for _ in range(config.num_prefill)] if config.is_pd else []


def pd_workers(config: RoutingConfig, workers: Sequence[SGLangServer]) -> PdWorkers | None:
    """The prefill (URL, bootstrap port) and decode URLs SMG is started with (None when not PD)."""
    if not config.is_pd:
        return None
    prefill = []
    for w in workers[: config.num_prefill]:
        port = w.server_info.get("disaggregation_bootstrap_port")
        prefill.append((w.base_url, int(port) if isinstance(port, int) else None))
    return PdWorkers(prefill=tuple(prefill), decode=tuple(w.base_url for w in workers[config.num_prefill :]))


def pd_context(config: RoutingConfig) -> dict[str, Any]:
    """What the results record about the PD fleet ({} when not PD)."""
    if not config.is_pd:
        return {}
    router = config.router
    return {
        "pd": {
            "num_prefill": config.num_prefill,
            "num_decode": config.num_decode,
            "prefill_policy": router.prefill_policy or config.routing_policy,
            "decode_policy": router.decode_policy or config.routing_policy,
            "prefill_args": list(config.prefill_args),
            "decode_args": list(config.decode_args),
        }
    }


def _truth_paths(config: RoutingConfig) -> list[Path]:
    return [c.sim_ground_truth_log for c in config.worker_server_configs() if c.sim_ground_truth_log is not None]


def _role_imbalance(per_worker: pd.DataFrame, prefix: str, column: str) -> float:
    rows = per_worker[per_worker["worker_id"].astype(str).str.startswith(prefix)]
    return load_imbalance(rows.assign(requests=rows[column].fillna(0)))


def pd_results(
    config: RoutingConfig, records: Sequence[RequestRecord], summary: dict[str, Any], per_worker: pd.DataFrame
) -> pd.DataFrame | None:
    """PD runs: ``summary["load_imbalance"]`` over the decode workers only (they carry the client's
    requests; prefill workers are compared by their own served counts in ``summary["pd"]``), and
    ``summary["pd"]`` (TTFT stages, failures by status, per-role utilisation and imbalance) from the
    workers' ground-truth logs, restricted to the run's own requests (warmup requests left out).
    Returns the per-request breakdown (None when not PD or no log)."""
    if not config.is_pd:
        return None
    imbalance = {
        "prefill": _role_imbalance(per_worker, "prefill_", "server_requests_served"),
        "decode": _role_imbalance(per_worker, "decode_", "requests"),
    }
    summary["load_imbalance"] = imbalance["decode"]
    truth = read_truth_rows(_truth_paths(config)) if config.backend == "sim" else []
    measured = {r.request_id for r in records}  # warmup requests are in the logs, not in the records
    truth = [row for row in truth if str(row.get("rid")) in measured]
    table = pd_breakdown(truth, records) if truth else None
    summary["pd"] = {**(pd_summary(table, truth) if table is not None else {}), "load_imbalance": imbalance}
    return table
