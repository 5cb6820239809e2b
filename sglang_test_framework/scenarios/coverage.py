"""Server code coverage of a run: which code of the launched servers (the simulator or SGLang) a run
exercised, as an HTML and a Cobertura XML report next to the results.

With ``coverage=True`` the scenario writes ``<output_dir>/coverage/.coveragerc`` before the servers start
(:func:`prepare_server_coverage`); ``servers/argv.py`` then launches every server under
``python -m coverage run --rcfile=…``, and each server process (with SGLang, each of its subprocesses too)
writes its own data file there when it exits, also on the SIGTERM of a clean stop. After the servers
stopped, :func:`report_server_coverage` combines the data files and writes ``coverage/html/index.html``
and ``coverage/coverage.xml``. A report that cannot be made is a warning in the log, never a failed run.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from ..config.server_config import ServerSettings
from ..errors import ConfigError
from ..fileio import write_text_atomic
from ..servers.argv import coverage_include, coverage_rc, coverage_rcfile

__all__ = ["ServerCoverage", "prepare_server_coverage", "report_server_coverage", "write_coverage_report"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerCoverage:
    """The combined line coverage of every server of a run and where its reports are."""

    percent_covered: float
    lines_covered: int
    lines_total: int
    files_measured: int
    html: Path
    xml: Path

    def to_dict(self) -> dict[str, float | int]:
        """The totals, for ``summary["server_coverage"]``."""
        return {
            "percent_covered": round(self.percent_covered, 2),
            "lines_covered": self.lines_covered,
            "lines_total": self.lines_total,
            "files_measured": self.files_measured,
        }

    def files(self) -> dict[str, Path]:
        """The report files, for the run's ``files``."""
        return {"coverage_html": self.html, "coverage_xml": self.xml}

    def to_text(self) -> str:
        """One line for the console."""
        return (
            f"server coverage: {self.percent_covered:.1f}% of {self.lines_total} lines "
            f"({self.lines_covered} covered, {self.files_measured} files): {self.html}"
        )


def prepare_server_coverage(settings: ServerSettings, output_dir: Path) -> Path | None:
    """Write the rc file the servers run under (before they start); None when ``coverage`` is off.

    Raises:
        ConfigError: coverage.py is not installed.
    """
    if not settings.coverage:
        return None
    if importlib.util.find_spec("coverage") is None:
        raise ConfigError("coverage: needs coverage.py in this environment; pip install 'coverage>=7.4'")
    coverage_dir = settings.coverage_data_dir(output_dir)
    rcfile = write_text_atomic(coverage_rcfile(coverage_dir), coverage_rc(settings, coverage_dir))
    logger.info(
        "servers run under coverage.py (measuring %s; rc file %s)", ", ".join(coverage_include(settings)), rcfile
    )
    return coverage_dir


def write_coverage_report(coverage_dir: Path) -> ServerCoverage | None:
    """Combine the data files in ``coverage_dir``; write ``html/index.html`` and ``coverage.xml``.

    Returns the totals, or None (a warning logged) when there is no data or the report fails.
    """
    try:
        import coverage
    except ImportError:
        logger.warning("no server coverage report: coverage.py is not installed (pip install 'coverage>=7.4')")
        return None
    coverage_dir = Path(coverage_dir)
    html_dir, xml_path = coverage_dir / "html", coverage_dir / "coverage.xml"
    try:
        cov = coverage.Coverage(data_file=str(coverage_dir / ".coverage"), config_file=False)
        cov.combine(data_paths=[str(coverage_dir)], strict=True)
        cov.save()
        percent = cov.html_report(directory=str(html_dir))
        cov.xml_report(outfile=str(xml_path))
        root = ET.parse(xml_path).getroot()
        result = ServerCoverage(
            percent_covered=float(percent),
            lines_covered=int(root.get("lines-covered", "0")),
            lines_total=int(root.get("lines-valid", "0")),
            files_measured=len(root.findall(".//class")),
            html=html_dir / "index.html",
            xml=xml_path,
        )
    except Exception as exc:  # a missing report must never fail the run it describes
        logger.warning(
            "no server coverage report in %s: %s (did the servers stop cleanly? a SIGKILLed server writes no data)",
            coverage_dir,
            exc,
        )
        return None
    logger.info("%s", result.to_text())
    return result


async def report_server_coverage(settings: ServerSettings, output_dir: Path) -> ServerCoverage | None:
    """:func:`write_coverage_report` for a run's settings, in a thread (None when ``coverage`` is off).

    Call it after the servers stopped: a server writes its data when it exits.
    """
    if not settings.coverage:
        return None
    return await asyncio.to_thread(write_coverage_report, settings.coverage_data_dir(output_dir))
