"""Repeated runs (``repeats`` = N > 1 on a NodeConfig or RoutingConfig): N complete, independent runs
in ``<output_dir>/rep-<k>``, then one combined summary in ``output_dir`` (docs/results-layout.md)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pandas as pd

from ..analysis.compare import REPEAT_DIR_PREFIX, load_result_file
from ..analysis.repeats import combine_summaries, repeats_table
from ..config.node_config import NodeConfig
from ..config.routing_config import RoutingConfig
from ..errors import FrameworkError
from ..fileio import write_json_atomic, write_text_atomic
from ..results import ChainedRecords, RepeatedRunResults, RunResults
from .run_dir import RunDirectory, RunStatus

__all__ = ["RepeatableTest", "repeat_configs", "run_repeats"]

logger = logging.getLogger(__name__)

ConfigT = TypeVar("ConfigT", NodeConfig, RoutingConfig)


class RepeatableTest(Protocol):
    """A scenario one repeat runs (NodeTest, RoutingTest)."""

    partial_results: RunResults | None

    async def run_async(self) -> RunResults:
        """Run once; on a signal or an error ``partial_results`` holds what was measured."""
        ...


def repeat_configs(config: ConfigT) -> list[ConfigT]:
    """The config of each repeat: ``repeats`` 1, its own directory ``<output_dir>/rep-<k>``, and the seed
    of :meth:`RepeatOptions.repeat_seed_of` (the same seed, or seed + k)."""
    return [
        config.with_updates(
            repeats=1,
            seed=config.repeat_seed_of(config.seed, k),
            output_dir=config.output_dir / f"{REPEAT_DIR_PREFIX}{k}",
        )
        for k in range(config.repeats)
    ]


async def run_repeats(
    kind: str,
    config: ConfigT,
    make_test: Callable[[ConfigT], RepeatableTest],
    output_file: Path | None = None,
    on_partial: Callable[[RepeatedRunResults], None] | None = None,
) -> RepeatedRunResults:
    """Claim ``config.output_dir``, run every repeat one after another and write the combined results.

    A signal or an error during a repeat writes the combined summary of the repeats measured so far
    (``status`` interrupted / failed, also handed to ``on_partial``) and propagates.
    """
    directory = RunDirectory.claim(config.output_dir, f"{kind}-repeats", config.model_dump(mode="json"))
    directory.write(repeats=config.repeats, repeat_seed=config.repeat_seed)
    done: list[RunResults] = []
    try:
        for k, rep_config in enumerate(repeat_configs(config)):
            logger.info("repeat %d of %d → %s", k + 1, config.repeats, rep_config.output_dir)
            test = make_test(rep_config)
            try:
                done.append(await test.run_async())
            except BaseException:
                if test.partial_results is not None:
                    done.append(test.partial_results)
                raise
    except asyncio.CancelledError:
        partial = _finish(kind, config, directory, done, "interrupted")
        if on_partial is not None:
            on_partial(partial)
        raise
    except Exception as exc:
        partial = _finish(kind, config, directory, done, "failed", error=f"{type(exc).__name__}: {exc}")
        if on_partial is not None:
            on_partial(partial)
        raise
    return _finish(kind, config, directory, done, "completed", output_file)


def _summary_line(result: RunResults) -> dict[str, Any]:
    """The repeat's ``summary.json`` line (bench_serving keys included), else its summary."""
    path = result.files.get("json")
    try:
        return load_result_file(path) if path is not None else dict(result.summary)
    except FrameworkError:
        return dict(result.summary)


def _stacked(frames: Sequence[pd.DataFrame], names: Sequence[str]) -> pd.DataFrame:
    parts = [frame.assign(repeat=name) for frame, name in zip(frames, names, strict=True) if not frame.empty]
    if not parts:
        return pd.DataFrame()
    stacked = pd.concat(parts, ignore_index=True)
    return stacked[["repeat", *(c for c in stacked.columns if c != "repeat")]]


def _mean_per_worker(results: Sequence[RunResults]) -> pd.DataFrame | None:
    """Each worker's row averaged over the repeats (the policy plots and tables read one row per worker)."""
    tables = [r.per_worker for r in results if r.per_worker is not None and not r.per_worker.empty]
    if not tables:
        return None
    stacked = pd.concat(tables, ignore_index=True)
    return stacked.groupby("worker_id", sort=False).mean(numeric_only=True).reset_index()


def _exits(results: Sequence[RunResults], names: Sequence[str]) -> list[dict[str, Any]]:
    return [
        {**exit_, "name": f"{name}/{exit_.get('name')}"}
        for result, name in zip(results, names, strict=True)
        for exit_ in result.summary.get("server_exits") or []
    ]


def _finish(
    kind: str,
    config: ConfigT,
    directory: RunDirectory,
    done: list[RunResults],
    status: RunStatus,
    output_file: Path | None = None,
    error: str | None = None,
) -> RepeatedRunResults:
    out = config.output_dir
    names = [r.output_dir.name if r.output_dir is not None else f"{REPEAT_DIR_PREFIX}{k}" for k, r in enumerate(done)]
    summary = combine_summaries([r.summary for r in done], names)
    summary["status"] = status
    summary["server_exits"] = _exits(done, names)
    first_context = done[0].context if done else {}
    name = config.name or str(first_context.get("name") or kind)
    context = {**first_context, "name": name, "repeats": config.repeats, "repeat_seed": config.repeat_seed}
    context["repeats_done"] = len(done)
    line = combine_summaries([_summary_line(r) for r in done], names)
    line.update(summary)
    line["context"] = context
    line["repeat_dirs"] = [str((out / n).resolve()) for n in names]
    files: dict[str, Path] = {"config": out / "config.yaml", "versions": out / "versions.json"}
    files["json"] = write_json_atomic(out / "summary.json", line, one_line=True)
    table = repeats_table([r.summary for r in done], names)
    files["repeats"] = write_text_atomic(out / "repeats.csv", table.to_csv())
    if output_file is not None and status == "completed":
        output_file.parent.mkdir(parents=True, exist_ok=True)
        with output_file.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(line, default=str) + "\n")
        files["output_file"] = output_file
    files["run"] = directory.finish(
        status,
        records=sum(len(r.records) for r in done),
        server_exits=summary["server_exits"],
        repeat_dirs=names,
        **({"error": error} if error else {}),
    )
    return RepeatedRunResults(
        name=name,
        kind=kind,
        summary=summary,
        requests=_stacked([r.requests for r in done], names),
        records=ChainedRecords([r.records for r in done]),
        timeseries=_stacked([r.timeseries for r in done], names),
        config=config.model_dump(mode="json"),
        context=context,
        output_dir=out,
        files=files,
        per_worker=_mean_per_worker(done),
        repeats=done,
    )
