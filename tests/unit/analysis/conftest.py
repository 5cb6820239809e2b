"""Fixtures shared by the plot tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from matplotlib.figure import Figure

from sglang_test_framework.analysis import plots


@pytest.fixture
def saved(monkeypatch: pytest.MonkeyPatch) -> list[Figure]:
    """Every figure saved through plots.save_figure, kept for inspection."""
    figures: list[Figure] = []
    original = plots.save_figure

    def keep(fig: Figure, path: Path) -> Path:
        figures.append(fig)
        return original(fig, path)

    monkeypatch.setattr(plots, "save_figure", keep)
    for module in ("compare_plots", "routing_plots", "sweep_plots"):
        monkeypatch.setattr(f"sglang_test_framework.analysis.{module}.save_figure", keep)
    return figures
