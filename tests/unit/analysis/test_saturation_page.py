"""The saturation sweep's figure and report.html, from a per-step table (no server)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from sglang_test_framework.analysis.html_pages import saturation_report_html
from sglang_test_framework.analysis.saturation_plots import plot_saturation
from sglang_test_framework.scenarios.saturation import STEP_COLUMNS, SaturationResult, _mark_knee


def table() -> pd.DataFrame:
    rows = []
    for step, (offered, achieved, p99, saturated) in enumerate(
        [(2.0, 2.0, 300.0, False), (4.0, 4.0, 420.0, False), (6.0, 5.8, 900.0, False), (8.0, 6.1, 2500.0, True)], 1
    ):
        row = dict.fromkeys(STEP_COLUMNS)
        row.update(step=step, target_rate=offered, offered_rate=offered, achieved_rate=achieved, saturated=saturated)
        row.update(median_server_latency=p99 / 2, p99_server_latency=p99, mean_ttft=p99 / 5, knee=False)
        row.update(saturation_reason="<why>", output_dir=f"probes/{step + 1:02d}")
        rows.append(row)
    return pd.DataFrame(rows, columns=list(STEP_COLUMNS))


def test_the_knee_is_the_highest_achieved_rate_that_kept_up() -> None:
    result = SaturationResult(6.2, table(), None)
    _mark_knee(result)
    assert result.knee_index == 2 and result.knee_rate == 5.8
    assert list(result.table["knee"]) == [False, False, True, False]
    assert "knee: step 3 — achieved 5.80 req/s of 6.00 offered" in result.headline()
    assert result.to_dict()["knee"]["step"] == 3 and result.notes == []
    every = table().assign(saturated=True)
    none_kept_up = SaturationResult(6.2, every, None)
    _mark_knee(none_kept_up)
    assert none_kept_up.knee_index is None and "every step was over-saturated" in none_kept_up.notes[0]


def test_figure_and_page(tmp_path: Path) -> None:
    result = SaturationResult(6.2, table(), None)
    _mark_knee(result)
    png = plot_saturation(result.table, 6.2, tmp_path / "plots" / "saturation_curve.png", "Model: m   Backend: sim")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = saturation_report_html(result.table, result.headline(), ["no <step> saturated"], [("Model", "m")], [png], {})
    assert re.findall(r'<section id="([a-z]+)"', page) == ["warnings", "summary", "plots", "config"]
    assert "knee: step 3" in page and page.count('<img src="data:image/png;base64,') == 1
    assert "&lt;why&gt;" in page and "no &lt;step&gt; saturated" in page and "<why>" not in page
