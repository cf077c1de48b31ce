"""The report's numbers, derived from ``ReportInput`` alone: response times, comparisons with the scenario's
targets, and the findings per institution (Danish sentences for the preparedness committee).

A time that never happened (no answer) counts as *not met*, never as zero; a median is over the answers
that came.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass

from hub.exercise.report.model import Inject, ReportInput, SentMessage

KIND_NAMES = {
    "text": "besked", "sitrep": "situationsrapport", "status": "status", "rollcall": "statusrunde",
    "alert": "varsel", "resource_request": "ressourceanmodning", "commitment": "tilsagn",
}  # fmt: skip
"""The kinds as the console names them; the CSV files keep the codes."""
PRIORITY_NAMES = {"routine": "rutine", "normal": "normal", "urgent": "haster", "life-safety": "liv i fare"}
LINK_NAMES = {"internet": "internet", "mqtt": "MQTT", "lora": "LoRa", "sine": "SINE", "satellite": "satellit"}


def tenths(seconds: float) -> str:
    """A metered time (airtime) to a tenth of a second, with a Danish comma: "10,9 s"."""
    return f"{seconds:.1f} s".replace(".", ",")


def duration(seconds: float | None) -> str:
    """A duration as people say it: "0,4 s", "45 s", "3 min 20 s", "1 t 05 min"; "—" for none. Below
    10 s a fraction keeps one decimal (a Danish comma): a delivery over a fast link takes well under a
    second, and "0 s" would read as "not measured"."""
    if seconds is None:
        return "—"
    if seconds < 9.95 and seconds != int(seconds):
        return "under 0,1 s" if round(seconds, 1) < 0.1 else tenths(seconds)
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} t {minutes:02d} min"


@dataclass(frozen=True, slots=True)
class Comparison:
    """One figure beside its target: ``met`` is None when the scenario set no target."""

    label: str
    value: str
    target: str
    met: bool | None


@dataclass(frozen=True, slots=True)
class InstitutionFigures:
    institution: str
    rollcall_seconds: tuple[float | None, ...]
    """Per roll-call the institution was asked in, the seconds to its answer (None: no answer)."""
    status_seconds: tuple[float | None, ...]
    """Per inject it received, the seconds to its first status after it."""
    sent: int
    delivered: int
    readable: int
    """Messages a read receipt is asked for (not statuses or roll-calls)."""
    read: int
    links: tuple[str, ...]
    findings: tuple[str, ...]


def count(number: int, one: str, many: str) -> str:
    """ "1 besked", "3 beskeder": Danish findings read as sentences, not as forms."""
    return f"{number} {one if number == 1 else many}"


def median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def rollcall_seconds(report: ReportInput) -> dict[str, list[float | None]]:
    out: dict[str, list[float | None]] = {name: [] for name in report.institutions}
    for call in report.rollcalls:
        for answer in call.answers:
            took = None if answer.answered_at is None else answer.answered_at - call.started
            out.setdefault(answer.institution, []).append(took)
    return out


def status_seconds(report: ReportInput) -> dict[str, list[float | None]]:
    out: dict[str, list[float | None]] = {name: [] for name in report.institutions}
    for inject in report.injects:
        for name, at in inject.first_status.items():
            out.setdefault(name, []).append(None if at is None else at - inject.sent_at)
    return out


def expects_receipt(message: SentMessage) -> bool:
    """Whether "read and understood" is asked of it: not of a status, nor of a roll-call (it is answered)."""
    return message.kind not in ("status", "rollcall")


def status_target(report: ReportInput, inject: Inject) -> float | None:
    """The inject's own deadline, else the scenario's target for the first status."""
    return inject.deadline if inject.deadline is not None else report.targets.first_status


def messages_to(report: ReportInput, institution: str) -> list[SentMessage]:
    return [m for m in report.messages if m.to == institution]


def _within(values: list[float | None], target: float | None) -> bool | None:
    if target is None:
        return None
    return bool(values) and all(v is not None and v <= target for v in values)


def comparisons(report: ReportInput) -> list[Comparison]:
    """The headline figures of the exercise beside what the scenario set."""
    targets = report.targets
    calls = [t for times in rollcall_seconds(report).values() for t in times]
    statuses = [t for times in status_seconds(report).values() for t in times]
    delivered: list[float | None] = [
        None if m.delivered_at is None else m.delivered_at - m.sent_at for m in report.messages
    ]
    read: list[float | None] = [
        None if m.read_at is None else m.read_at - m.sent_at for m in report.messages if expects_receipt(m)
    ]
    out = [
        Comparison(
            "Svar på statusrunder (median; langsomste)",
            f"{duration(median(calls))}; {_slowest(calls)}" if calls else "ingen statusrunder",
            _target(targets.rollcall_answer),
            _within(calls, targets.rollcall_answer) if calls else None,
        ),
        Comparison(
            "Første status efter indspil (median; langsomste)",
            f"{duration(median(statuses))}; {_slowest(statuses)}" if statuses else "ingen indspil",
            _status_target_text(report),
            _statuses_met(report) if statuses else None,
        ),
        Comparison(
            "Leveret til modtageren (median; ikke leveret)",
            f"{duration(median(delivered))}; {sum(v is None for v in delivered)} af {len(delivered)}",
            _target(targets.delivery),
            _within(delivered, targets.delivery) if delivered else None,
        ),
        Comparison(
            "Læst og forstået (median; ikke læst)",
            f"{duration(median(read))}; {sum(v is None for v in read)} af {len(read)}",
            _target(targets.read_receipt),
            _within(read, targets.read_receipt) if read else None,
        ),
    ]
    kinds = set(report.link_kinds.values())
    if "satellite" in kinds:
        spent = [u.credits for u in report.usage if u.credits is not None]
        credits = sum(spent)
        out.append(
            Comparison(
                "Satellitkreditter brugt (målt)",
                str(credits) if spent else "ikke målt",
                "—" if targets.satellite_credits is None else f"højst {targets.satellite_credits}",
                None
                if targets.satellite_credits is None or not spent
                else credits <= targets.satellite_credits,
            )
        )
    if "lora" in kinds:
        aired = [u.airtime for u in report.usage if u.airtime is not None]
        airtime = sum(aired)
        out.append(
            Comparison(
                "LoRa-sendetid brugt (målt)",
                tenths(airtime) if aired else "ikke målt",
                "—" if targets.lora_airtime is None else f"højst {targets.lora_airtime:.0f} s",
                None if targets.lora_airtime is None or not aired else airtime <= targets.lora_airtime,
            )
        )
    return out


def _status_target_text(report: ReportInput) -> str:
    limits = {status_target(report, i) for i in report.injects if i.first_status}
    if limits == {None} or not limits:
        return "—"
    if len(limits) == 1:
        return _target(limits.pop())
    return "indspillets egen frist"


def _statuses_met(report: ReportInput) -> bool | None:
    """None when no inject had a target; else whether every first status came within its inject's."""
    verdicts = [
        _within([None if at is None else at - i.sent_at for at in i.first_status.values()], limit)
        for i in report.injects
        if i.first_status and (limit := status_target(report, i)) is not None
    ]
    return all(verdicts) if verdicts else None


def _target(seconds: float | None) -> str:
    return "—" if seconds is None else f"inden for {duration(seconds)}"


def _slowest(values: list[float | None]) -> str:
    missing = sum(v is None for v in values)
    if missing:
        return f"{missing} uden svar"
    return duration(max(v for v in values if v is not None))


def institution_figures(report: ReportInput) -> list[InstitutionFigures]:
    calls, statuses = rollcall_seconds(report), status_seconds(report)
    out = []
    for name in report.institutions:
        sent = messages_to(report, name)
        readable = [m for m in sent if expects_receipt(m)]
        links = tuple(sorted({m.link for m in sent if m.link is not None}))
        out.append(
            InstitutionFigures(
                name,
                tuple(calls.get(name, [])),
                tuple(statuses.get(name, [])),
                len(sent),
                sum(m.delivered_at is not None for m in sent),
                len(readable),
                sum(m.read_at is not None for m in readable),
                links,
                tuple(findings(report, name)),
            )
        )
    return out


def findings(report: ReportInput, institution: str) -> list[str]:
    """What the committee should know about one institution, worst first."""
    targets = report.targets
    out: list[str] = []
    for call in report.rollcalls:
        for answer in call.answers:
            if answer.institution != institution:
                continue
            if answer.answered_at is None:
                how = "eskaleret: ingen kontakt" if answer.escalated else "intet svar"
                tried = ", ".join(link_name(report, link) for link in answer.links_tried)
                out.append(f"Svarede ikke på statusrunden «{call.question}» ({how}; forsøgt via {tried}).")
                continue
            took = answer.answered_at - call.started
            if targets.rollcall_answer is not None and took > targets.rollcall_answer:
                again = ""
                if len(answer.links_tried) > 1:  # the hub asked again over the next link before it answered
                    again = "; spurgt igen via " + ", ".join(
                        link_name(report, x) for x in answer.links_tried[1:]
                    )
                out.append(
                    f"Svarede på statusrunden «{call.question}» efter {duration(took)}"
                    f" (mål: {duration(targets.rollcall_answer)}{again})."
                )
    for inject in report.injects:
        if institution not in inject.first_status:
            continue
        at = inject.first_status[institution]
        if at is None:
            out.append(f"Sendte ingen status efter «{inject.label}».")
        elif (limit := status_target(report, inject)) is not None and at - inject.sent_at > limit:
            out.append(
                f"Første status efter «{inject.label}» kom efter {duration(at - inject.sent_at)}"
                f" (mål: {duration(limit)})."
            )
    sent = messages_to(report, institution)
    failed = [m for m in sent if m.failed]
    unconfirmed = [m for m in sent if m.delivered_at is None and not m.failed]
    if failed:
        out.append(f"{count(len(failed), 'besked', 'beskeder')} udløb uden at nå frem.")
    if unconfirmed:
        out.append(f"{count(len(unconfirmed), 'besked', 'beskeder')} blev ikke bekræftet modtaget.")
    unread = [m for m in sent if m.delivered_at is not None and m.read_at is None and expects_receipt(m)]
    if unread and targets.read_receipt is not None:
        out.append(
            f"{count(len(unread), 'modtaget besked', 'modtagne beskeder')} blev ikke kvitteret som læst."
        )
    late_reads = [m for m in sent if m.read_at is not None and targets.read_receipt is not None
                  and m.read_at - m.sent_at > targets.read_receipt]  # fmt: skip
    if late_reads:
        slowest = max(m.read_at - m.sent_at for m in late_reads if m.read_at is not None)
        out.append(
            f"{count(len(late_reads), 'besked', 'beskeder')} blev først kvitteret som læst efter målet"
            f" (langsomste {duration(slowest)}; mål: {duration(targets.read_receipt)})."
        )
    slow = [m for m in sent if m.delivered_at is not None and targets.delivery is not None
            and m.delivered_at - m.sent_at > targets.delivery]  # fmt: skip
    if slow:
        out.append(
            f"{count(len(slow), 'besked', 'beskeder')} nåede først frem efter målet på"
            f" {duration(targets.delivery)}."
        )
    links = {m.link for m in sent if m.link is not None}
    if links and links <= {link for link in links if _is_backup(report, link)}:
        names = ", ".join(link_name(report, link) for link in sorted(links))
        out.append(f"Blev kun nået over reserveforbindelser ({names}).")
    if not out:
        out.append("Ingen afvigelser: svarede og modtog inden for målene.")
    return out


def _is_backup(report: ReportInput, link: str) -> bool:
    """A link other than the internet: a message that went over it has failed over (or was meant to)."""
    return report.link_kinds.get(link, link) != "internet"


def link_name(report: ReportInput, link: str | None) -> str:
    """How people name a link ("LoRa", "satellit"); a second link of a kind keeps its own name."""
    if link is None:
        return "—"
    kind = report.link_kinds.get(link, link)
    label = LINK_NAMES.get(kind, kind)
    return label if link == kind else f"{link} ({label})"
