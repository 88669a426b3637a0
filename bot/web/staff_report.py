"""The report's figures with their Indonesian labels (staff texts.yaml), as the page's tables and
the CSV share them: one list of labelled sections, so both always show the same numbers."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date

from bot.core.feedback import CASE_PREFIX
from bot.services.insights import BOOKING_STEPS, CASE_REASONS

COUNT, PERCENT, SECONDS, MINUTES = "count", "percent", "seconds", "minutes"


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    value: int | float | None
    day: str = ""


@dataclass(frozen=True)
class Section:
    key: str
    rows: tuple[Row, ...]
    unit: str = COUNT


def percent(share: float | None) -> float | None:
    return None if share is None else round(share * 100, 1)


def subject_title(item: dict, texts: dict) -> str:
    """A satisfaction subject as staff read it: the topic's title, or which kind of case."""
    if item["subject"].startswith(CASE_PREFIX):
        reason = item["subject"].removeprefix(CASE_PREFIX)
        return texts["report"]["case_subject"].format(reason=texts["reasons"].get(reason, reason))
    return item["title"] or item["subject"]


def sections(report: dict, texts: dict) -> dict[str, Section]:
    """Every figure of the report, labelled, by section (the CSV's `bagian`), in page order."""
    t = texts["report"]
    who = t["who"]
    outcomes = report["outcomes"]
    cases = report["cases"]
    first = cases["first_reply"]
    satisfaction = report["satisfaction"]

    def rows(pairs) -> tuple[Row, ...]:
        return tuple(Row(key, label, value) for key, label, value in pairs)

    return {
        section.key: section
        for section in (
            Section(
                "messages_per_day",
                tuple(Row(w, who[w], day[w], day["day"]) for day in report["messages"]["per_day"] for w in who),
            ),
            Section("messages", rows((w, who[w], report["messages"]["total"][w]) for w in who)),
            Section("intents", rows((i["intent"], i["title"], i["count"]) for i in report["intents"])),
            Section("outcomes", rows((k, t["outcomes"][k], n) for k, n in outcomes["counts"].items())),
            Section(
                "outcome_rates", rows((k, t["outcomes"][k], percent(r)) for k, r in outcomes["rates"].items()), PERCENT
            ),
            Section("outcomes_other", rows((k, t["outcomes"].get(k, k), n) for k, n in outcomes["other"].items())),
            Section("triage", rows((k, t["triage"][k], report["triage"][k]) for k in t["triage"])),
            Section("danger_signs", rows((s["rule"], s["rule"], s["count"]) for s in report["triage"]["danger_signs"])),
            Section("bookings", rows((k, t["bookings"][k], report["bookings"][k]) for k in BOOKING_STEPS)),
            Section("cases_opened", rows((r, texts["reasons"][r], cases["opened"][r]) for r in CASE_REASONS)),
            Section("cases_closed", rows([("total", t["total"], cases["closed"])])),
            Section("first_staff_reply", rows((k, t["first_reply"][k], first[k]) for k in t["first_reply"]), SECONDS),
            Section(
                "satisfaction_asked", rows((s["subject"], subject_title(s, texts), s["asked"]) for s in satisfaction)
            ),
            Section(
                "satisfaction_helpful",
                rows((s["subject"], subject_title(s, texts), s["helpful"]) for s in satisfaction),
            ),
            Section(
                "satisfaction_not_helpful",
                rows((s["subject"], subject_title(s, texts), s["not_helpful"]) for s in satisfaction),
            ),
            Section(
                "satisfaction_share",
                rows((s["subject"], subject_title(s, texts), percent(s["share_helpful"])) for s in satisfaction),
                PERCENT,
            ),
        )
    }


def to_csv(report: dict, texts: dict) -> str:
    """The report as CSV: one row per figure (bagian, tanggal, kunci, keterangan, nilai);
    percentages as numbers from 0 to 100, durations in seconds, an unknown value empty."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(texts["report"]["csv_header"])
    for section in sections(report, texts).values():
        for row in section.rows:
            writer.writerow((section.key, row.day, row.key, row.label, "" if row.value is None else row.value))
    return out.getvalue()


def duration(seconds: int | None, texts: dict) -> str:
    """45 dtk, 12 mnt 5 dtk, 2 jam 5 mnt."""
    t = texts["report"]
    if seconds is None:
        return t["none"]
    if seconds < 60:
        return t["seconds"].format(n=seconds)
    if seconds < 3600:
        return t["minutes"].format(m=seconds // 60, s=seconds % 60)
    return t["hours"].format(h=seconds // 3600, m=seconds % 3600 // 60)


def day_label(value: str, texts: dict) -> str:
    """2026-11-25 -> 25 Nov."""
    day = date.fromisoformat(value)
    return f"{day.day} {texts['months'][day.month - 1]}"


def percent_text(value: float | None, texts: dict) -> str:
    """66,7 % (Indonesian decimal comma)."""
    return texts["report"]["none"] if value is None else f"{value:.1f} %".replace(".", ",")


def _chart(key: str, title: str, labels, series, *, horizontal=True, stacked=False, unit=COUNT) -> dict:
    """One chart for the page's script (static/report.js draws it with Chart.js): the labels along
    one axis, and each series' values in their order; the figures are the tables' own."""
    return {
        "key": key,
        "title": title,
        "horizontal": horizontal,
        "stacked": stacked,
        "unit": unit,
        "labels": list(labels),
        "series": [{"key": k, "label": label, "values": list(values)} for k, label, values in series],
    }


def charts(report: dict, texts: dict) -> dict[str, dict]:
    """The report's charts by key in page order, with Indonesian labels; a chart with nothing to draw
    is left out (its table says there is no data)."""
    t = texts["report"]
    parts = sections(report, texts)
    days = report["messages"]["per_day"]
    rates = parts["outcome_rates"].rows
    first = parts["first_staff_reply"].rows
    satisfaction = report["satisfaction"]

    def one(key: str, title: str) -> dict:
        rows = parts[key].rows
        return _chart(key, title, (r.label for r in rows), [(COUNT, t["count"], [r.value for r in rows])])

    drawn = (
        _chart(
            "messages",
            t["messages_chart"],
            (day_label(day["day"], texts) for day in days),
            [(w, t["who"][w], [day[w] for day in days]) for w in t["who"]],
            horizontal=False,
            stacked=True,
        ),
        _chart(
            "outcomes",
            t["outcomes_title"],
            [t["share"]],
            [(r.key, r.label, [r.value]) for r in rates if r.value is not None],
            stacked=True,
            unit=PERCENT,
        ),
        one("intents", t["intents_title"]),
        one("triage", t["triage_title"]),
        one("bookings", t["bookings_title"]),
        one("cases_opened", t["cases_title"]),
        _chart(
            "first_reply",
            t["first_reply_title"],
            (t[k] for k in ("median", "p90")),
            [("first_reply", t["minutes_unit"], [_minutes(r.value) for r in first if r.key != "count"])],
            unit=MINUTES,
        ),
        _chart(
            "satisfaction",
            t["satisfaction_title"],
            (subject_title(s, texts) for s in satisfaction),
            [
                ("helpful", t["helpful"], [s["helpful"] for s in satisfaction]),
                ("not_helpful", t["not_helpful"], [s["not_helpful"] for s in satisfaction]),
                ("unanswered", t["no_answer"], [s["asked"] - s["helpful"] - s["not_helpful"] for s in satisfaction]),
            ],
            stacked=True,
        ),
    )
    return {chart["key"]: chart for chart in drawn if chart["labels"] and any(_drawable(chart))}


def _drawable(chart: dict):
    return (value is not None for series in chart["series"] for value in series["values"])


def _minutes(seconds: int | None) -> float | None:
    return None if seconds is None else round(seconds / 60, 1)
