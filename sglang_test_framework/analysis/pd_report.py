"""The PD section of a routing run's ``report.html`` (docs/pd.md): TTFT stages and per-role
utilisation and imbalance from ``summary["pd"]``."""

from __future__ import annotations

from typing import Any

from .html_report import escape, key_value_table, rows_table
from .report import format_cell

__all__ = ["pd_report_block"]

_STAGE_LABELS = {
    "prefill_bootstrap_ms": "prefill: waiting for the decode's handshake",
    "prefill_queue_ms": "prefill: queue",
    "prefill_ms": "prefill: forward (all chunks)",
    "transfer_ms": "KV transfer (link queue + transfer)",
    "transfer_modelled_ms": "KV transfer on an idle link (model)",
    "decode_wait_ms": "decode: until the next step",
    "first_step_ms": "decode: first step",
    "server_ttft_ms": "server TTFT (sum of the stages)",
    "client_ttft_ms": "client TTFT",
    "other_ms": "client TTFT − server TTFT (router, network)",
}


def _share(value: Any) -> str:
    """A busy share (0–1) as a percentage."""
    return "n/a" if value is None else f"{100 * float(value):.1f}%"


def pd_report_block(pd_summary: dict[str, Any]) -> str:
    """HTML: a table of the TTFT stages (mean / p50 / p99 ms), then utilisation and imbalance per role."""
    rows = [
        {"stage": label, "mean (ms)": v["mean"], "p50 (ms)": v["p50"], "p99 (ms)": v["p99"]}
        for key, label in _STAGE_LABELS.items()
        if isinstance(v := pd_summary.get(key), dict)
    ]
    note = (
        f'<p class="muted">{escape(pd_summary.get("requests", 0))} requests with the full PD path in the '
        "simulators' ground truth; stage formulas in docs/pd.md.</p>"
    )
    util = pd_summary.get("utilisation") or {}
    imbalance = pd_summary.get("load_imbalance") or {}
    roles = [
        (f"{role} utilisation (busy share, mean over workers)", _share(util.get(role)))
        for role in ("prefill", "decode")
    ]
    roles += [
        (f"{role} load imbalance (max/mean, 1 = even)", format_cell(imbalance.get(role)))
        for role in ("prefill", "decode")
    ]
    roles += [(f"busy share {worker}", _share(share)) for worker, share in (util.get("workers") or {}).items()]
    failed = pd_summary.get("failed_by_status") or {}
    roles += [(f"failed rendezvous: {status}", str(n)) for status, n in failed.items()]
    stages = rows_table(["stage", "mean (ms)", "p50 (ms)", "p99 (ms)"], rows) if rows else ""
    return note + stages + key_value_table(roles, "per role")
