"""PNG plots of a node run and of a comparison. The only module that imports matplotlib (Agg backend);
the other plot modules of this package draw through :func:`new_figure` / :func:`save_figure`.

Figures are plain :class:`matplotlib.figure.Figure` objects (no pyplot state), so plotting is safe from
any thread and nothing has to be closed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = [
    "Axes",
    "new_figure",
    "plot_cdf",
    "plot_comparison",
    "plot_node_results",
    "save_figure",
    "tokens_per_second",
]

DPI = 100
REQUEST_COLUMNS_USED = (
    "success",
    "send_s",
    "first_token_s",
    "finish_s",
    "output_tokens",
    "ttft_ms",
    "server_latency_ms",
    "total_latency_ms",
    "mean_itl_ms",
    "tpot_ms",
)
# (title, metrics, is a 0–1 ratio)
SERVER_PANELS: tuple[tuple[str, tuple[str, ...], bool], ...] = (
    ("running vs queued requests", ("sglang:num_running_reqs", "sglang:num_queue_reqs"), False),
    ("KV token usage (ratio)", ("sglang:token_usage",), True),
    ("cache hit rate (last prefill batch)", ("sglang:cache_hit_rate",), True),
)


# ----------------------------------------------------------------------------- helpers
def new_figure(nrows: int = 1, ncols: int = 1, figsize: tuple[float, float] = (8.0, 4.5)) -> tuple[Figure, list[Axes]]:
    """A figure with an ``nrows × ncols`` grid of axes, returned flat in row-major order."""
    fig = Figure(figsize=figsize)
    grid = fig.subplots(nrows, ncols, squeeze=False)
    return fig, [ax for row in grid for ax in row]


def save_figure(fig: Figure, path: Path) -> Path:
    """Lay out ``fig``, write it as PNG to ``path`` (parents created) and return ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    return path


def plot_cdf(ax: Axes, values: pd.Series, label: str) -> None:
    """Empirical CDF of ``values`` (NaN dropped) as a line on ``ax``; nothing for no values."""
    data = np.sort(pd.to_numeric(values, errors="coerce").dropna().to_numpy(dtype=float))
    if data.size:
        ax.plot(data, np.arange(1, data.size + 1) / data.size, label=label)


def _legend(ax: Axes) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)


def tokens_per_second(first_s: np.ndarray, finish_s: np.ndarray, tokens: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Tokens per bucket between consecutive ``edges`` (s), each request's tokens spread evenly over
    ``[first_s, finish_s]`` (a zero-length span puts them all at ``finish_s``).

    Uses F(t) = Σ rateᵢ·(clip(t, aᵢ, bᵢ) − aᵢ), evaluated with prefix sums: O((n + buckets)·log n).
    """
    span = finish_s - first_s
    point = span <= 0
    rate = np.where(point, 0.0, tokens / np.where(point, 1.0, span))

    def cumulative(t: np.ndarray) -> np.ndarray:
        out = np.zeros_like(t, dtype=float)
        for starts, sign in ((first_s, 1.0), (finish_s, -1.0)):
            order = np.argsort(starts)
            s, r = starts[order], rate[order]
            k = np.searchsorted(s, t, side="right")
            cum_r = np.concatenate([[0.0], np.cumsum(r)])
            cum_rs = np.concatenate([[0.0], np.cumsum(r * s)])
            out += sign * (t * cum_r[k] - cum_rs[k])
        return out

    spread = np.diff(cumulative(edges.astype(float)))
    points, _ = np.histogram(finish_s[point], bins=edges, weights=tokens[point])
    return np.asarray(spread + points, dtype=float)


# ----------------------------------------------------------------------------- node run
def _distributions(ok: pd.DataFrame, path: Path) -> Path:
    fig, axes = new_figure(2, 3, (15, 8))
    groups = (
        ("latency", (("server_latency_ms", "server latency"), ("total_latency_ms", "total latency"))),
        ("TTFT", (("ttft_ms", "TTFT"),)),
        ("ITL / TPOT", (("mean_itl_ms", "mean ITL per request"), ("tpot_ms", "TPOT"))),
    )
    for col, (title, series) in enumerate(groups):
        hist_ax, cdf_ax = axes[col], axes[3 + col]
        for key, label in series:
            values = pd.to_numeric(ok[key], errors="coerce").dropna()
            if len(values):
                hist_ax.hist(values, bins=40, alpha=0.6, label=label)
            plot_cdf(cdf_ax, ok[key], label)
        hist_ax.set_title(f"{title} distribution")
        cdf_ax.set_title(f"{title} CDF")
        hist_ax.set_xlabel("ms")
        cdf_ax.set_xlabel("ms")
        cdf_ax.set_ylabel("fraction of requests")
        _legend(hist_ax)
        _legend(cdf_ax)
    return save_figure(fig, path)


def _over_time(ok: pd.DataFrame, path: Path) -> Path:
    fig, axes = new_figure(1, 2, (14, 4.5))
    for ax, key, title in (
        (axes[0], "ttft_ms", "TTFT over time"),
        (axes[1], "server_latency_ms", "server latency over time"),
    ):
        ax.scatter(ok["send_s"], ok[key], s=6, alpha=0.6)
        ax.set_title(title)
        ax.set_xlabel("send time (s from run start)")
        ax.set_ylabel("ms")
    return save_figure(fig, path)


def _throughput(df: pd.DataFrame, ok: pd.DataFrame, path: Path) -> Path:
    fig, axes = new_figure(1, 2, (14, 4.5))
    end_s = float(np.nanmax(df["finish_s"].to_numpy(dtype=float))) if df["finish_s"].notna().any() else 0.0
    edges = np.arange(0.0, np.floor(end_s) + 2.0, 1.0)
    timed = ok.dropna(subset=["first_token_s", "finish_s"])
    tok = tokens_per_second(
        timed["first_token_s"].to_numpy(dtype=float),
        timed["finish_s"].to_numpy(dtype=float),
        timed["output_tokens"].to_numpy(dtype=float),
        edges,
    )
    axes[0].stairs(tok, edges)
    axes[0].set_title("output tokens/s (tokens spread from first token to finish)")
    failed = df[~df["success"].astype(bool)].dropna(subset=["finish_s"])
    for frame, label in ((ok.dropna(subset=["finish_s"]), "completed"), (failed, "failed")):
        counts, _ = np.histogram(frame["finish_s"].to_numpy(dtype=float), bins=edges)
        axes[1].stairs(counts, edges, label=label)
    axes[1].set_title("requests finished per second")
    _legend(axes[1])
    for ax in axes:
        ax.set_xlabel("time (s from run start)")
        ax.set_ylim(bottom=0)
    return save_figure(fig, path)


def _server_timeseries(ts: pd.DataFrame, path: Path) -> Path | None:
    wanted = [m for _, metrics, _ in SERVER_PANELS for m in metrics]
    sub = ts[ts["metric"].isin(wanted)]
    if sub.empty:
        return None
    fig, axes = new_figure(1, len(SERVER_PANELS), (6 * len(SERVER_PANELS), 4.5))
    for ax, (title, metrics, ratio) in zip(axes, SERVER_PANELS, strict=True):
        for (target, metric), grp in sub[sub["metric"].isin(metrics)].groupby(["target", "metric"], sort=True):
            short = str(metric).removeprefix("sglang:")
            ax.plot(grp["t_s"], grp["value"], label=f"{target} {short}")
        ax.set_title(title)
        ax.set_xlabel("time (s from run start)")
        ax.set_ylim(*((0.0, 1.05) if ratio else (0.0, None)))
        _legend(ax)
    return save_figure(fig, path)


def plot_node_results(df: pd.DataFrame, timeseries_df: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Write the PNGs of one node run and return their paths.

    Args:
        df: Per-request table (:meth:`MetricsCollector.to_dataframe`); missing columns count as empty.
        timeseries_df: Long time series (:meth:`MetricsCollector.timeseries_dataframe`), may be empty.
        out_dir: Directory for ``latency_distributions.png`` (histograms + CDFs of latency, TTFT,
            ITL/TPOT), ``latency_over_time.png`` (TTFT and latency vs send time),
            ``throughput_over_time.png`` (output tok/s, finished req/s) and, with server samples,
            ``server_timeseries.png`` (running vs queued requests, KV token usage, cache hit rate).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    if not df.empty:
        frame = df.reindex(columns=list(dict.fromkeys([*df.columns, *REQUEST_COLUMNS_USED])))
        frame["success"] = frame["success"].fillna(False).astype(bool)
        ok = frame[frame["success"]]
        paths.append(_distributions(ok, out_dir / "latency_distributions.png"))
        paths.append(_over_time(ok, out_dir / "latency_over_time.png"))
        paths.append(_throughput(frame, ok, out_dir / "throughput_over_time.png"))
    if not timeseries_df.empty and "metric" in timeseries_df:
        server = _server_timeseries(timeseries_df, out_dir / "server_timeseries.png")
        if server is not None:
            paths.append(server)
    return paths


# ----------------------------------------------------------------------------- comparisons
def _bars(ax: Axes, table: pd.DataFrame, metrics: Sequence[tuple[str, str]], title: str) -> None:
    labels = [str(x) for x in table.index]
    x = np.arange(len(labels))
    present = [(m, name) for m, name in metrics if m in table]
    width = 0.8 / max(1, len(present))
    for k, (metric, name) in enumerate(present):
        values = pd.to_numeric(table[metric], errors="coerce").to_numpy(dtype=float)
        err_col = table.get(f"{metric}_ci95")
        err = None if err_col is None else pd.to_numeric(err_col, errors="coerce").fillna(0).to_numpy(dtype=float)
        xs = x + (k - (len(present) - 1) / 2) * width
        ax.bar(xs, np.nan_to_num(values), width, yerr=err, capsize=3, label=name)
        ratios = table.get(f"{metric}_ratio")
        if ratios is not None:
            for xi, v, r in zip(xs, values, pd.to_numeric(ratios, errors="coerce"), strict=True):
                if np.isfinite(v) and pd.notna(r):
                    ax.annotate(f"×{r:.2f}", (xi, v), ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x, labels, rotation=30, ha="right", fontsize=8)
    ax.set_title(title)
    if len(present) > 1:
        _legend(ax)


def _sweep_curve(ax: Axes, table: pd.DataFrame, sweep_variable: str) -> None:
    data = table.assign(_x=pd.to_numeric(table[sweep_variable], errors="coerce")).dropna(subset=["_x"])
    data = data.sort_values("_x")
    for metric, name in (("median_server_latency", "P50 latency"), ("p99_server_latency", "P99 latency")):
        if metric in data:
            ax.plot(data["output_throughput"], data[metric], "o-", label=name)
    for _, row in data.iterrows():
        ax.annotate(f"{row['_x']:g}", (row["output_throughput"], row.get("p99_server_latency", 0.0)), fontsize=7)
    ax.set_xlabel("output throughput (tok/s)")
    ax.set_ylabel("server latency (ms)")
    ax.set_title(f"throughput vs latency (points labelled by {sweep_variable})")
    _legend(ax)


def plot_comparison(table: pd.DataFrame, out_path: Path, sweep_variable: str | None = None) -> Path:
    """Write a comparison PNG and return its path.

    Args:
        table: One row per run label (index) with metric columns such as ``request_throughput``,
            ``output_throughput``, ``median_server_latency``, ``p99_server_latency`` and optionally
            ``<metric>_ci95`` (error bars) and ``<metric>_ratio`` (annotated ×ratio vs the baseline).
        out_path: PNG path.
        sweep_variable: A numeric column of ``table`` (e.g. ``request_rate``): adds a
            throughput-vs-latency curve with the points ordered by it.
    """
    curve = sweep_variable is not None and sweep_variable in table and "output_throughput" in table
    fig, axes = new_figure(1, 4 if curve else 3, (20 if curve else 15, 4.8))
    _bars(axes[0], table, (("request_throughput", "req/s"),), "request throughput (req/s)")
    _bars(axes[1], table, (("output_throughput", "tok/s"),), "output throughput (tok/s)")
    _bars(axes[2], table, (("median_server_latency", "P50"), ("p99_server_latency", "P99")), "server latency (ms)")
    if curve and sweep_variable is not None:
        _sweep_curve(axes[3], table, sweep_variable)
    fig.suptitle("comparison (×ratio vs baseline; error bars: 95% CI over repeated runs)")
    return save_figure(fig, Path(out_path))
