"""The after-action report of an exercise: an HTML page, the same page as a printable PDF, and CSV files.

``collect`` builds a ``ReportInput`` from the exercise record and the hub's databases; ``write_report``
draws the charts and writes everything into one folder::

    rapport.html  report.css  rapport.pdf  figurer/*.png  csv/*.csv

The charts and the PDF need the optional ``report`` extra (matplotlib, Jinja2, WeasyPrint):
``pip install 'beredt[report]'``; without it ``write_report`` raises ``ConfigError`` saying so.
"""

from __future__ import annotations

import importlib.util
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from hub.core.errors import ConfigError
from hub.exercise.report.model import ReportInput

REPORT_LIBRARIES = {"matplotlib": "matplotlib", "jinja2": "Jinja2", "weasyprint": "WeasyPrint"}
INSTALL_HINT = (
    "pip install 'beredt[report]'  (på en Pi også: sudo apt install libpango-1.0-0 libpangoft2-1.0-0)"
)


@dataclass(frozen=True, slots=True)
class ReportFiles:
    html: Path
    pdf: Path
    charts: dict[str, Path]
    csv: list[Path]


def missing_libraries() -> list[str]:
    return [name for module, name in REPORT_LIBRARIES.items() if importlib.util.find_spec(module) is None]


def write_report(report: ReportInput, folder: Path, *, generated: float | None = None) -> ReportFiles:
    """Write the report of ``report`` into ``folder`` (created if needed; files of the same names are
    replaced)."""
    missing = missing_libraries()
    if missing:
        raise ConfigError(
            f"evalueringsrapporten kræver {', '.join(missing)}, som ikke er installeret: {INSTALL_HINT}"
        )
    from hub.exercise.report import charts, page, tables  # the optional libraries, loaded only here

    folder.mkdir(parents=True, exist_ok=True)
    drawn = charts.draw_all(report, folder / "figurer")
    csv_files = tables.write_all(report, folder / "csv")
    shutil.copyfile(page.STYLESHEET, folder / page.STYLESHEET.name)
    html_file = folder / "rapport.html"
    when = time.time() if generated is None else generated
    html_file.write_text(
        page.render_html(report, drawn, [f.name for f in csv_files], folder, when), encoding="utf-8"
    )
    pdf_file = folder / "rapport.pdf"
    page.write_pdf(html_file, pdf_file)
    return ReportFiles(html_file, pdf_file, drawn, csv_files)
