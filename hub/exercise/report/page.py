"""The report as a web page (a Jinja2 template) and as a printable PDF of the same page (WeasyPrint).

One layout serves both: the template carries print CSS (A4, page numbers, the exercise marking on every
page), so what the committee prints is what the coordinator saw on screen. WeasyPrint is pure Python on
top of Pango, which Raspberry Pi OS and Debian ship (``libpango-1.0-0``, ``libpangoft2-1.0-0``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import jinja2

from hub.exercise.report import figures
from hub.exercise.report.charts import outage_spans
from hub.exercise.report.model import ReportInput

TEMPLATE = "report.html"
STYLESHEET = Path(__file__).with_name("report.css")
"""Beside the page in the report's folder: a page may not carry its own styles under the console's CSP."""


def render_html(
    report: ReportInput, charts: Mapping[str, Path], csv_files: list[str], folder: Path, generated: float
) -> str:
    """The report page; chart images are referenced relative to ``folder`` (where the page is written)."""
    zone = ZoneInfo(report.timezone)

    def local(at: float | None, with_date: bool = False) -> str:
        if at is None:
            return "—"
        return datetime.fromtimestamp(at, zone).strftime("%d.%m.%Y %H:%M:%S" if with_date else "%H:%M:%S")

    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("hub.exercise.report", "."),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["local"] = local
    environment.filters["duration"] = figures.duration
    environment.filters["tenths"] = figures.tenths
    environment.filters["median"] = figures.median
    environment.filters["link"] = lambda link: figures.link_name(report, link)
    environment.filters["kind"] = lambda kind: figures.KIND_NAMES.get(kind, kind)
    environment.filters["priority"] = lambda priority: figures.PRIORITY_NAMES.get(priority, priority)
    unanswered = [m for m in report.messages if m.delivered_at is None]
    return environment.get_template(TEMPLATE).render(
        report=report,
        charts={name: path.relative_to(folder).as_posix() for name, path in charts.items()},
        comparisons=figures.comparisons(report),
        institutions=figures.institution_figures(report),
        unanswered=unanswered,
        unread=[
            m
            for m in report.messages
            if m.delivered_at is not None and m.read_at is None and figures.expects_receipt(m)
        ],
        outages=outage_spans(report),
        generated=local(generated, with_date=True),
        csv_files=csv_files,
    )


class _ScreenOnlyRules(logging.Filter):
    """WeasyPrint reads media types only, so it warns that it skips the page's phone rule (a screen media
    query); skipping it is right for print, and the warning would only puzzle whoever runs the report."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "media type" not in record.getMessage()


SCREEN_ONLY_RULES = _ScreenOnlyRules()


def write_pdf(html_file: Path, pdf_file: Path) -> None:
    """Print the page (with its chart files beside it) to PDF."""
    for name in ("weasyprint", "weasyprint.progress", "fontTools"):  # their step-by-step progress is not news
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("weasyprint").addFilter(SCREEN_ONLY_RULES)  # the same filter is added only once
    import weasyprint  # imported here: its Pango binding loads native libraries at import

    weasyprint.HTML(filename=str(html_file), base_url=str(html_file.parent)).write_pdf(str(pdf_file))
