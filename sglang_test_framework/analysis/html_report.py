"""Self-contained HTML pages: one file, readable offline and safe to mail around.

Plots are embedded as base64 PNG, the CSS is inline, there is no script, font or external reference,
and a Content-Security-Policy forbids loading anything but embedded images. Every text that comes from
a run (names, settings, errors, log tails, config values) is HTML-escaped.

:class:`HTMLPage` assembles a page from a title block and sections; the helpers render the pieces
(tables, figures, warnings, config). :mod:`.html_pages` builds the pages of each scenario.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from ..redact import REDACTED
from .report import ReportSection, format_cell
from .run_warnings import SEVERE_KINDS, RunWarning

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "HTMLPage",
    "config_block",
    "escape",
    "figures_block",
    "frame_table",
    "key_value_table",
    "report_tables",
    "rows_table",
    "warnings_block",
]

CONTENT_SECURITY_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SECRET_KEY_SUFFIX = "api_key"

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       margin: 0 auto; max-width: 1500px; padding: 0 24px 48px; color: #1b1f24; background: #fff; }
header { border-bottom: 2px solid #1b1f24; padding: 16px 0 8px; }
h1 { font-size: 1.6em; margin: 0 0 8px; }
h2 { font-size: 1.25em; margin: 28px 0 8px; border-bottom: 1px solid #d0d7de; padding-bottom: 4px; }
h3 { font-size: 1.05em; margin: 18px 0 6px; }
nav { margin: 10px 0; font-size: 0.9em; }
nav a { margin-right: 14px; color: #0550ae; }
table { border-collapse: collapse; margin: 6px 0 12px; font-size: 0.9em; }
th, td { border: 1px solid #d0d7de; padding: 3px 8px; text-align: left; vertical-align: top; }
.scroll td { white-space: nowrap; }
.scroll th { vertical-align: bottom; }
.warning pre { white-space: pre-wrap; }
th { background: #f6f8fa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.settings th { width: 14em; }
.scroll { overflow-x: auto; max-width: 100%; }
.tables { display: flex; flex-wrap: wrap; gap: 0 28px; align-items: flex-start; }
figure { margin: 12px 0 20px; }
figure img { max-width: 100%; height: auto; border: 1px solid #d0d7de; }
figcaption { font-size: 0.85em; color: #57606a; }
pre { background: #f6f8fa; border: 1px solid #d0d7de; padding: 8px; overflow-x: auto; font-size: 0.85em; }
.warning { border-left: 4px solid #bf8700; background: #fff8c5; padding: 6px 10px; margin: 8px 0; }
.warning.severe { border-left-color: #cf222e; background: #ffebe9; }
table.alert { border: 2px solid #cf222e; }
table.alert caption, table.alert td { color: #cf222e; font-weight: bold; }
.ok { border-left: 4px solid #1a7f37; background: #dafbe1; padding: 6px 10px; }
.status-completed { color: #1a7f37; font-weight: bold; }
.status-other { color: #cf222e; font-weight: bold; }
.muted { color: #57606a; font-size: 0.85em; }
"""


def escape(value: Any) -> str:
    """``value`` as HTML-escaped text (quotes included)."""
    return html.escape(str(value), quote=True)


def key_value_table(rows: Sequence[tuple[str, str]], caption: str = "", css_class: str = "") -> str:
    """A two-column table of ``(label, value)`` rows, values right-aligned when they start with a digit."""
    cls = f' class="{escape(css_class)}"' if css_class else ""
    head = f"<caption>{escape(caption)}</caption>" if caption else ""
    body = "".join(f'<tr><th scope="row">{escape(k)}</th><td{_num_class(v)}>{escape(v)}</td></tr>' for k, v in rows)
    return f"<table{cls}>{head}<tbody>{body}</tbody></table>"


def _num_class(text: str) -> str:
    numeric = text[:1].isdigit() or (text[:1] == "-" and text[1:2].isdigit()) or text == "n/a"
    return ' class="num"' if numeric else ""  # n/a stands in a numeric column: aligned with the numbers


def rows_table(columns: Sequence[str], rows: Sequence[Mapping[str, Any]], digits: int = 2) -> str:
    """A table with a header row; cells formatted like the console tables (:func:`.report.format_cell`)."""
    head = "".join(f'<th scope="col">{escape(c)}</th>' for c in columns)
    body = []
    for row in rows:
        cells = [format_cell(row.get(c), digits) for c in columns]
        body.append("<tr>" + "".join(f"<td{_num_class(v)}>{escape(v)}</td>" for v in cells) + "</tr>")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def frame_table(frame: pd.DataFrame, digits: int = 2) -> str:
    """``frame`` as a table; a named index becomes the first column."""
    data = frame.reset_index() if frame.index.name is not None else frame
    rows = [{str(k): v for k, v in record.items()} for record in data.to_dict(orient="records")]
    return rows_table([str(c) for c in data.columns], rows, digits)


def report_tables(sections: Sequence[ReportSection]) -> str:
    """The console report's sections (:func:`.report.node_report_sections`), one table each; the notes
    of a line (error messages) become rows of their own."""
    tables = []
    for section in sections:
        rows: list[tuple[str, str]] = []
        for line in section.lines:
            rows += list(line.items)
            rows += [("", note) for note in line.notes]
        tables.append(key_value_table(rows, section.title, "alert" if section.alert else ""))
    return f'<div class="tables">{"".join(tables)}</div>'


def _png_size(data: bytes) -> tuple[int, int] | None:
    if not data.startswith(PNG_MAGIC) or len(data) < 24:
        return None
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def figures_block(paths: Sequence[Path]) -> str:
    """Each PNG of ``paths`` embedded as a base64 ``<img>`` with its file name as caption; files that are
    missing or not PNG are named in a note instead."""
    parts = []
    for path in paths:
        data = path.read_bytes() if path.is_file() else b""
        size = _png_size(data)
        if size is None:
            parts.append(f'<p class="muted">figure {escape(path.name)} could not be read</p>')
            continue
        src = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
        parts.append(
            f'<figure><img src="{src}" width="{size[0]}" height="{size[1]}" alt="{escape(path.stem)}">'
            f"<figcaption>{escape(path.name)}</figcaption></figure>"
        )
    return "".join(parts) or '<p class="muted">No figures (plots were not written for this run).</p>'


def warnings_block(warnings: Sequence[RunWarning], note: str = "") -> str:
    """The warnings, most severe kinds in red; a green line when there are none."""
    if not warnings:
        return (
            '<p class="ok">No warnings: every run completed, no server exited, every request succeeded and no run '
            "was over-saturated.</p>"
        )
    parts = []
    for w in warnings:
        severity = " severe" if w.kind in SEVERE_KINDS else ""
        detail = f"<pre>{escape(w.detail)}</pre>" if w.detail else ""
        parts.append(
            f'<div class="warning{severity}" data-kind="{escape(w.kind)}"><p>{escape(w.message)}</p>{detail}</div>'
        )
    suffix = f'<p class="muted">{escape(note)}</p>' if note else ""
    return "".join(parts) + suffix


def _mask_secrets(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if str(k).endswith(SECRET_KEY_SUFFIX) and v else _mask_secrets(v)) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_mask_secrets(v) for v in value]
    return value


def config_block(config: Mapping[str, Any]) -> str:
    """The config as YAML in a ``<pre>`` (every ``*api_key`` value shown as ``***``)."""
    if not config:
        return '<p class="muted">No config recorded.</p>'
    text = yaml.safe_dump(_mask_secrets(dict(config)), sort_keys=False, allow_unicode=True, default_flow_style=False)
    return f"<pre>{escape(text)}</pre>"


@dataclass
class HTMLPage:
    """A report page: a title block (title, settings table) and sections with stable ids.

    Attributes:
        title: The page heading (also the document title).
        settings: The run's settings as ``(label, value)`` rows (:func:`.report.run_settings`).
        status: The run's status (``completed``, ``interrupted``, ``failed``…), if there is one.
        sections: ``(id, heading, body HTML)`` in page order; bodies come from the helpers above.
    """

    title: str
    settings: Sequence[tuple[str, str]] = ()
    status: str | None = None
    sections: list[tuple[str, str, str]] = field(default_factory=list)

    def add(self, section_id: str, heading: str, body: str) -> None:
        """Append a section (``body`` is HTML already escaped by the helpers)."""
        self.sections.append((section_id, heading, body))

    def _title_block(self) -> str:
        rows = list(self.settings)
        status = ""
        if self.status is not None:
            cls = "status-completed" if self.status == "completed" else "status-other"
            status = f'<p>Status: <span class="{cls}">{escape(self.status)}</span></p>'
        generated = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
        return (
            f'<header id="title"><h1>{escape(self.title)}</h1>{status}'
            f"{key_value_table(rows, css_class='settings') if rows else ''}"
            f'<p class="muted">Written {escape(generated)} by sglang_test_framework.</p></header>'
        )

    def render(self) -> str:
        """The whole document."""
        nav = "".join(f'<a href="#{escape(sid)}">{escape(heading)}</a>' for sid, heading, _ in self.sections)
        body = "".join(
            f'<section id="{escape(sid)}"><h2>{escape(heading)}</h2>{content}</section>'
            for sid, heading, content in self.sections
        )
        return (
            "<!DOCTYPE html>\n"
            '<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{escape(CONTENT_SECURITY_POLICY)}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(self.title)}</title><style>{CSS}</style></head>"
            f"<body>{self._title_block()}<nav>{nav}</nav>{body}</body></html>\n"
        )
