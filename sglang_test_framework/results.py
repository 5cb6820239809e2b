"""RunResults: what a scenario returns — summary metrics, per-request table, time series, file paths."""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

import pandas as pd

from .records import RequestRecord

__all__ = ["ChainedRecords", "RepeatedRunResults", "RunResults"]


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


class ChainedRecords(Sequence[RequestRecord]):
    """Several runs' record sequences read as one, in order (each part stays lazy)."""

    def __init__(self, parts: Sequence[Sequence[RequestRecord]]) -> None:
        self._parts = list(parts)
        self._ends = list(itertools.accumulate(len(p) for p in self._parts))

    def __len__(self) -> int:
        return self._ends[-1] if self._ends else 0

    @overload
    def __getitem__(self, index: int) -> RequestRecord: ...

    @overload
    def __getitem__(self, index: slice) -> list[RequestRecord]: ...

    def __getitem__(self, index: int | slice) -> RequestRecord | list[RequestRecord]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("record index out of range")
        part = bisect.bisect_right(self._ends, index)
        start = self._ends[part - 1] if part else 0
        return self._parts[part][index - start]

    def __iter__(self) -> Iterator[RequestRecord]:
        for part in self._parts:
            yield from part


@dataclass
class RepeatedRunResults(RunResults):
    """Results of a run made ``repeats`` times (``NodeConfig(repeats=N)`` / ``RoutingConfig(repeats=N)``).

    ``summary`` is the combined summary (``analysis.repeats.combine_summaries``: counts totalled, other
    numbers averaged, ``repeat_stats`` with the mean and 95% CI of each key metric); ``requests``,
    ``timeseries`` and ``per_worker`` are the repeats' tables one after another with a ``repeat``
    column; ``records`` reads every repeat's records in order; ``repeats`` holds each repeat's own
    results (its directory is ``output_dir / "rep-<k>"``).
    """

    repeats: list[RunResults] = field(default_factory=list)
