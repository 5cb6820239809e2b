"""Per-request worker attribution behind SMG: its ``x-smg-routed-worker-id`` (the worker URL) checked
against the worker's own ``X-Worker-Id``, and used where a worker sends no id (real SGLang)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from ..records import RequestRecord

__all__ = ["router_attribution"]


def router_attribution(
    records: Iterable[RequestRecord], df: pd.DataFrame, url_to_worker: Mapping[str, str]
) -> dict[str, Any]:
    """Cross-check and complete ``df["worker_id"]`` (in place) from the routed-worker header.

    Returns ``{"routed": n, "checked": n, "mismatched": n, "filled": n, "examples": [...]}``: requests
    that named a routed worker, those that also carried the worker's own id, those where the two disagree
    (the first 5 as examples), and those whose ``worker_id`` came from the router alone.
    """
    urls = {url.rstrip("/"): wid for url, wid in url_to_worker.items()}
    routed = checked = mismatched = 0
    fill: dict[str, str] = {}
    examples: list[dict[str, Any]] = []
    for rec in records:
        if not rec.routed_worker:
            continue
        routed += 1
        by_router = urls.get(rec.routed_worker.rstrip("/"), rec.routed_worker)
        if rec.worker_id is None:
            fill[rec.request_id] = by_router
            continue
        checked += 1
        if rec.worker_id != by_router:
            mismatched += 1
            if len(examples) < 5:
                examples.append(
                    {"request_id": rec.request_id, "worker_id": rec.worker_id, "routed_worker": rec.routed_worker}
                )
    if fill and not df.empty and "worker_id" in df.columns:
        missing = df["worker_id"].isna()
        df.loc[missing, "worker_id"] = df.loc[missing, "request_id"].map(fill)
    return {"routed": routed, "checked": checked, "mismatched": mismatched, "filled": len(fill), "examples": examples}
