"""The report's charts, drawn by matplotlib (its Agg backend: no display, the same on a Pi as in CI).

Each chart is a PNG file; the HTML and the PDF show the same files. Danish labels, local times, and
every figure beside its target (a dashed line). A missing answer is drawn where people look for it (a red
cross at the right edge), never as a zero.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import matplotlib

matplotlib.use("Agg")  # before pyplot: no display on a Pi or in CI

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from hub.exercise.report.figures import expects_receipt, link_name, rollcall_seconds, status_target
from hub.exercise.report.model import ReportInput

DPI = 150
MISSING = "#c0392b"
TARGET = "#444444"
OUTAGE_LABEL_LEVELS = 3
"""Lines a row's outage labels are stacked over before the next one goes back to the top."""
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")


def draw_all(report: ReportInput, folder: Path) -> dict[str, Path]:
    """Draw every chart that has data into ``folder``; returns chart name -> PNG file."""
    folder.mkdir(parents=True, exist_ok=True)
    charts: dict[str, Callable[[ReportInput], Figure | None]] = {
        "rollcall": rollcall_chart,
        "status": status_chart,
        "timeline": timeline_chart,
        "receipts": receipts_chart,
    }
    out = {}
    for name, draw in charts.items():
        with plt.rc_context({"font.size": 9, "axes.titlesize": 10, "legend.fontsize": 8}):
            figure = draw(report)
        if figure is None:
            continue
        path = folder / f"{name}.png"
        figure.savefig(path, dpi=DPI, bbox_inches="tight", metadata={"Software": None})
        plt.close(figure)
        out[name] = path
    return out


def _minutes(values: list[float | None]) -> list[float | None]:
    return [None if v is None else v / 60 for v in values]


def _target_line(ax: Axes, seconds: float | None) -> None:
    if seconds is not None:
        ax.axvline(seconds / 60, color=TARGET, linestyle="--", linewidth=1.2, label="Mål")


def _dot_rows(
    ax: Axes, rows: list[tuple[str, list[float | None]]], limits: list[float | None], what: str
) -> None:
    """One row per label: a dot per time, a red cross at the right edge for each that never came; the
    target is a dashed line when all rows share it, else a bar on each row that has one."""
    present = [v for _, values in rows for v in _minutes(values) if v is not None]
    edge = max([*present, *((limit or 0) / 60 for limit in limits), 1.0]) * 1.15
    missing_drawn = False
    for y, (_, values) in enumerate(rows):
        for value in _minutes(values):
            if value is None:
                label = None if missing_drawn else f"Intet {what}"
                ax.plot(edge, y, marker="X", color=MISSING, markersize=10, linestyle="", label=label)
                missing_drawn = True
            else:
                ax.plot(value, y, marker="o", color=PALETTE[0], markersize=8, linestyle="", alpha=0.85)
    shared = set(limits)
    if len(shared) == 1:
        _target_line(ax, shared.pop())
    else:
        for y, limit in enumerate(limits):
            if limit is not None:
                ax.plot(limit / 60, y, marker="|", color=TARGET, markersize=22, markeredgewidth=2,
                        linestyle="", label="Mål" if y == limits.index(limit) else None)  # fmt: skip
    ax.set_yticks(range(len(rows)), [label for label, _ in rows])
    ax.invert_yaxis()
    ax.set_xlim(0, edge * 1.05)
    ax.set_xlabel("minutter")
    ax.grid(axis="x", alpha=0.3)
    if any(limit is not None for limit in limits) or missing_drawn:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)


def rollcall_chart(report: ReportInput) -> Figure | None:
    """Roll-call answer times per institution (one dot per roll-call)."""
    times = rollcall_seconds(report)
    rows = [(name, values) for name, values in times.items() if values]
    if not rows:
        return None
    figure, ax = plt.subplots(figsize=(7.5, 0.45 * len(rows) + 1.4))
    _dot_rows(ax, rows, [report.targets.rollcall_answer] * len(rows), "svar")
    ax.set_title("Svartid på statusrunder pr. institution")
    return figure


def status_chart(report: ReportInput) -> Figure | None:
    """Time to the first status after each inject (one dot per institution that got it)."""
    if not any(inject.first_status for inject in report.injects):
        return None
    numbered = [(n, i) for n, i in enumerate(report.injects, start=1) if i.first_status]
    injects = [i for _, i in numbered]
    # the number and time, not the text: a whole sentence does not fit beside the chart, and the table
    # under it gives each inject's full text by the same number
    rows = [(f"Indspil {n}, kl. {_local(report, i.sent_at):%H:%M}",
             [None if at is None else at - i.sent_at for at in i.first_status.values()])
            for n, i in numbered]  # fmt: skip
    figure, ax = plt.subplots(figsize=(7.5, 0.45 * len(rows) + 1.4))
    _dot_rows(ax, rows, [status_target(report, i) for i in injects], "status")
    ax.set_title("Tid til første status efter hvert indspil")
    return figure


def _local(report: ReportInput, at: float) -> datetime:
    return datetime.fromtimestamp(at, ZoneInfo(report.timezone))


def _day(report: ReportInput, at: float) -> float:
    """A time as matplotlib's date axis counts it (days)."""
    return float(mdates.date2num(_local(report, at)))  # type: ignore[no-untyped-call]


def outage_spans(report: ReportInput) -> list[tuple[str | None, str, float, float, bool]]:
    """(peer, link, from, to, simulated) for every time a link was down; one still down at the end runs
    to the end of the exercise."""
    end = report.ended or max([report.started, *(e.at for e in report.link_events)])
    down: dict[tuple[str, str | None, bool], float] = {}
    spans = []
    for event in sorted(report.link_events, key=lambda e: e.at):
        key = (event.link, event.peer, event.simulated)
        if event.state == "down":
            down.setdefault(key, event.at)
        elif key in down:
            spans.append((event.peer, event.link, down.pop(key), event.at, event.simulated))
    spans += [(peer, link, at, end, simulated) for (link, peer, simulated), at in down.items()]
    return spans


def timeline_chart(report: ReportInput) -> Figure | None:
    """Every message sent, on its recipient's row, coloured by the link that carried it (a line to the
    recipient's acknowledgement), each status it sent back (a triangle in the colour of the link it came
    over); grey bands where a link was down (hatched: an outage the exercise simulated)."""
    if not report.messages and not report.link_events and not report.heard:
        return None
    rows = list(report.institutions)
    row_of = {name: y for y, name in enumerate(rows)}
    figure, ax = plt.subplots(figsize=(8, 0.55 * len(rows) + 1.8))
    colours: dict[str, str] = {}
    labelled: set[str] = set()
    bands_on_row = [0] * len(rows)
    for peer, link, start, end, simulated in sorted(outage_spans(report), key=lambda span: span[2]):
        ys = [row_of[peer]] if peer in row_of else list(range(len(rows)))
        label = "Simuleret udfald" if simulated else "Forbindelse nede"
        for y in ys:
            ax.barh(y, (end - start) / 86400, left=_day(report, start), height=0.8,
                    color="#dddddd", hatch="//" if simulated else None, edgecolor="#999999", linewidth=0,
                    label=None if label in labelled else label, zorder=1)  # fmt: skip
            labelled.add(label)
            # bands on one row often start minutes apart (a simulated outage, then the link it took
            # down): each next label sits a line lower, so none is written over another
            level = bands_on_row[y] % OUTAGE_LABEL_LEVELS
            bands_on_row[y] += 1
            ax.text(_day(report, start), y - 0.38 + 0.19 * level, f" {link_name(report, link)}", fontsize=6,
                    color="#444444", va="top", zorder=2.5,
                    bbox={"facecolor": "white", "alpha": 0.75, "linewidth": 0, "pad": 0.6})  # fmt: skip
    for message in report.messages:
        row = row_of.get(message.to)
        if row is None:
            continue
        sent = _day(report, message.sent_at)
        name = link_name(report, message.link) if message.link else "ikke sendt"
        colour = colours.setdefault(name, PALETTE[len(colours) % len(PALETTE)])
        if message.delivered_at is None:
            ax.plot(sent, row, marker="o", markerfacecolor="white", markeredgecolor=MISSING, markersize=8,
                    linestyle="", zorder=3, label=None if "u" in labelled else "Ikke bekræftet")  # fmt: skip
            labelled.add("u")
            continue
        done = _day(report, message.delivered_at)
        ax.plot([sent, done], [row, row], color=colour, linewidth=2, zorder=2)
        ax.plot(sent, row, marker="o", color=colour, markersize=7, linestyle="", zorder=3,
                label=None if name in labelled else name)  # fmt: skip
        labelled.add(name)
    for heard in report.heard:
        row = row_of.get(heard.institution)
        if row is None:
            continue
        name = link_name(report, heard.link)
        colour = colours.setdefault(name, PALETTE[len(colours) % len(PALETTE)])
        ax.plot(_day(report, heard.at), row + 0.22, marker="^", color=colour, markersize=6, linestyle="",
                zorder=3, label=None if "s" in labelled else "Status modtaget")  # fmt: skip
        labelled.add("s")
    ax.set_yticks(range(len(rows)), rows)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    span = (report.ended or max([report.started, *(m.sent_at for m in report.messages)])) - report.started
    shown = "%H:%M" if span > 600 else "%H:%M:%S"  # a short drill needs its seconds
    clock = mdates.DateFormatter(shown, tz=ZoneInfo(report.timezone))  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_formatter(clock)
    ax.xaxis_date()
    ax.set_xlabel(f"lokal tid ({report.timezone})")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title("Beskeder pr. modtager: forbindelse og udfald")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
    return figure


def receipts_chart(report: ReportInput) -> Figure | None:
    """Per institution: time to delivery and to "read and understood" of each message sent to it."""
    rows = []
    for name in report.institutions:
        sent = [m for m in report.messages if m.to == name and expects_receipt(m)]
        if sent:
            rows.append((name, sent))
    if not any(m.delivered_at is not None for _, sent in rows for m in sent):
        return None  # nothing reached anyone: no times to draw (the lists below the chart say so)
    figure, ax = plt.subplots(figsize=(7.5, 0.45 * len(rows) + 1.4))
    seen: set[str] = set()
    for y, (_, sent) in enumerate(rows):
        for message in sent:
            for at, marker, colour, label in (
                (message.delivered_at, "o", PALETTE[0], "Leveret"),
                (message.read_at, "s", PALETTE[2], "Læst og forstået"),
            ):
                if at is None:
                    continue
                ax.plot((at - message.sent_at) / 60, y, marker=marker, color=colour, markersize=7, alpha=0.8,
                        linestyle="", label=None if label in seen else label)  # fmt: skip
                seen.add(label)
    _target_line(ax, report.targets.read_receipt)
    ax.set_yticks(range(len(rows)), [name for name, _ in rows])
    ax.invert_yaxis()
    ax.set_xlim(left=0)
    ax.set_xlabel("minutter efter afsendelse")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title("Leverings- og læsetider pr. institution")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
    return figure
