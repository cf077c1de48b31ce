"""The report's verdicts and findings from a ReportInput built by hand: a missing answer is never a fast
one, a figure without a target gets no verdict, an inject's own deadline beats the scenario's, and the
findings say what happened in Danish sentences."""

from __future__ import annotations

from hub.exercise.report import figures
from hub.exercise.report.model import (
    Inject,
    ReportInput,
    RollCallAnswer,
    RollCallResult,
    Targets,
)

T0 = 1_800_000_000.0
HOMES = ("Solbakken", "Lindely")


def report(targets: Targets, *, lindely_answers: bool, lindely_status: float | None) -> ReportInput:
    call = RollCallResult("ab12cd34", "Har I varme?", T0, (
        RollCallAnswer("Solbakken", T0 + 60, "internet", ("internet",), escalated=False),
        RollCallAnswer("Lindely", T0 + 120 if lindely_answers else None, "lora" if lindely_answers else None,
                       ("internet", "lora"), escalated=not lindely_answers),
    ))  # fmt: skip
    inject = Inject("Strømmen er gået", "message", T0, HOMES,
                    {"Solbakken": T0 + 300, "Lindely": lindely_status}, deadline=600)  # fmt: skip
    kinds = {"internet": "internet", "lora": "lora"}
    return ReportInput("ov-1", "Øvelse", "Staben", T0, T0 + 3600, "Europe/Copenhagen", targets, HOMES,
                       rollcalls=(call,), injects=(inject,), link_kinds=kinds)  # fmt: skip


def verdicts(r: ReportInput) -> dict[str, bool | None]:
    return {c.label.split(" (")[0]: c.met for c in figures.comparisons(r)}


def test_a_missing_answer_is_not_met_however_fast_the_others() -> None:
    r = report(Targets(rollcall_answer=600, first_status=60), lindely_answers=False, lindely_status=None)
    got = verdicts(r)
    assert got["Svar på statusrunder"] is False
    assert got["Første status efter indspil"] is False
    (lindely,) = [i for i in figures.institution_figures(r) if i.institution == "Lindely"]
    assert lindely.findings[:2] == (
        "Svarede ikke på statusrunden «Har I varme?» (eskaleret: ingen kontakt; forsøgt via internet, LoRa).",
        "Sendte ingen status efter «Strømmen er gået».",
    )


def test_the_injects_own_deadline_beats_the_scenarios_target() -> None:
    # 9 minutes: late by the scenario's first_status (60 s) but within the inject's own deadline (600 s)
    r = report(Targets(rollcall_answer=600, first_status=60), lindely_answers=True, lindely_status=T0 + 540)
    assert verdicts(r)["Første status efter indspil"] is True
    (solbakken, lindely) = figures.institution_figures(r)
    assert solbakken.findings == ("Ingen afvigelser: svarede og modtog inden for målene.",)
    assert lindely.findings == ("Ingen afvigelser: svarede og modtog inden for målene.",)


def test_no_target_no_verdict() -> None:
    r = report(Targets(), lindely_answers=True, lindely_status=T0 + 540)
    r = ReportInput(**{**{f: getattr(r, f) for f in r.__dataclass_fields__}, "injects": ()})
    got = verdicts(r)
    assert got["Svar på statusrunder"] is None and got["Første status efter indspil"] is None
    assert all(c.target == "—" for c in figures.comparisons(r))


def test_durations_and_counts_read_as_people_say_them() -> None:
    assert [figures.duration(s) for s in (None, 45, 200, 600, 3900)] == ["—", "45 s", "3 min 20 s", "10 min",
                                                                        "1 t 05 min"]  # fmt: skip
    # sub-second deliveries over fast links: one decimal, never a "0 s" that reads as unmeasured
    assert [figures.duration(s) for s in (0.02, 0.38, 2.0, 4.26, 9.97)] == ["under 0,1 s", "0,4 s", "2 s",
                                                                           "4,3 s", "10 s"]  # fmt: skip
    assert figures.count(1, "besked", "beskeder") == "1 besked"
    assert figures.count(3, "besked", "beskeder") == "3 beskeder"


def test_a_late_answer_after_asking_again_says_over_which_link() -> None:
    r = report(Targets(rollcall_answer=60), lindely_answers=True, lindely_status=T0 + 540)
    (_, lindely) = figures.institution_figures(r)
    assert lindely.findings[0] == (
        "Svarede på statusrunden «Har I varme?» efter 2 min (mål: 1 min; spurgt igen via LoRa)."
    )
