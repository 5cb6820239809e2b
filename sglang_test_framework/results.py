"""RunResults: what a scenario returns — summary metrics, per-request table, time series, file paths."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .records import RequestRecord

__all__ = ["RunResults"]


@dataclass
class RunResults:
    """Results of one NodeTest or RoutingTest run.

    ``records`` is any sequence of the run's records; scenarios pass ``MetricsCollector.records``, which
    reads them back from ``requests.jsonl`` on access instead of holding them in memory.

    Attribute access is the typed API; mapping access keeps the spec's style working:
    ``results['metrics']['request_throughput']``, ``results['success_rate']``,
    ``results['exported_files']['csv']``.
    """

    name: str
    kind: str
    summary: dict[str, Any]
    requests: pd.DataFrame
    records: Sequence[RequestRecord]
    timeseries: pd.DataFrame = field(default_factory=pd.DataFrame)
    config: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
    output_dir: Path | None = None
    files: dict[str, Path] = field(default_factory=dict)
    per_worker: pd.DataFrame | None = None

    @property
    def metrics(self) -> dict[str, Any]:
        """The flat summary (same as ``summary``)."""
        return self.summary

    @property
    def success_rate(self) -> float:
        """Completed ÷ sent."""
        return float(self.summary.get("success_rate", 0.0))

    def _mapping(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "metrics": self.summary,
            "success_rate": self.success_rate,
            "exported_files": {k: str(v) for k, v in self.files.items()},
            "config": self.config,
            "context": self.context,
            "requests": self.requests,
            "timeseries": self.timeseries,
            "per_worker": self.per_worker,
        }

    def __getitem__(self, key: str) -> Any:
        mapping = self._mapping()
        if key in mapping:
            return mapping[key]
        if key in self.summary:
            return self.summary[key]
        raise KeyError(f"{key!r}: not a results key; use one of {sorted(mapping)} or a metric name")

    def __contains__(self, key: object) -> bool:
        return key in self._mapping() or key in self.summary

    def keys(self) -> Iterator[str]:
        """Mapping-style keys."""
        return iter(self._mapping())
