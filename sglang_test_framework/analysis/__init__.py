"""Analysis: console reports, comparisons of result files, and plots.

Importing this package does not import matplotlib; only :mod:`.plots` (and the plot modules that
draw through it) do.
"""

from __future__ import annotations

from .compare import ComparisonResult, compare_results, load_result_file
from .report import format_node_report, format_table

__all__ = ["ComparisonResult", "compare_results", "format_node_report", "format_table", "load_result_file"]
