"""The report page (Laporan) in real headless Chromium against the app served over HTTP: a week of
messages through the webhook, then staff pick a period, see every chart drawn by Chart.js with
the same figures as the JSON API (one bar per figure, its length zero only for a zero), read the
tables, open the table behind the daily chart, download the CSV, follow a missed phrasing to the
unanswered inbox; the page fits a phone and reads without JavaScript (tables, no empty charts).

With KLINIK_SCREENSHOTS=docs (`make screenshots`) it also writes docs/laporan-desktop.png and
docs/laporan-phone.png."""

import os
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import ROOT, app_config
from helpers import PASSWORD, PHONE, fits_the_screen, png_size, say, seed_two_days, serving

from bot.web import create_app

DESKTOP = {"width": 1280, "height": 900}
WEEK = "from=2026-11-20&to=2026-11-26"
# The five days before the seeded two, for a chart worth looking at: (patient, messages) per day.
EARLIER = (
    (("11", ("kenapa betis kedutan", "makasih", "👍")), ("12", ("alamat klinik di mana",)), ("13",
    ("jual kuota internet?",))),
    (("14", ("berapa harga akupunktur?", "makasih", "1")), ("15", ("kalau kopi ngaruh ga ke kedutan?",)), ("16",
    ("kaki",))),
    (("17", ("cara mencegah kedutan betis", "makasih", "kurang")), ("18", ("jam buka hari sabtu?",)), ("19", ("halo",)),
     ("20", ("kenapa betis kedutan", "oke makasih", "ya membantu"))),
    (("21", ("betis kram tiap malam kenapa ya", "makasih", "👍")), ("22", ("bisa home visit?",))),
    (("23", ("harga emas hari ini brp",)), ("24", ("kenapa betis kedutan terus", "terima kasih", "👎")), ("25",
    ("stres bikin kedutan?",))),
)  # fmt: skip
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def served(database_url, kb_copy, clock):
    app = create_app(app_config(database_url, secret_key="browser-test-key", knowledge_dir=kb_copy))
    for key in ("klinik_inbox", "klinik_console", "klinik_insights", "klinik_teacher"):
        app.extensions[key].clock = clock
    app.extensions["klinik_accounts"].add("sari", PASSWORD)
    seeded_at = clock()
    for offset, day in enumerate(EARLIER):
        clock.now = seeded_at - timedelta(days=len(EARLIER) - offset, hours=-1)
        for patient, texts in day:
            for text in texts:
                say(app, text, f"SMweek{patient}{clock().timestamp():.0f}", sender=f"whatsapp:+62811000000{patient}")
                clock.advance(minutes=1)
    clock.now = seeded_at
    seed_two_days(app, clock)
    with serving(app, "localhost") as base:
        yield app, base
    app.extensions["klinik_database"].dispose()


def login(browser, base, **options):
    context = browser.new_context(locale="id-ID", **options)
    page = context.new_page()
    page.goto(f"{base}/staff/login")
    page.fill("input[name=name]", "sari")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/staff/")
    return context, page


def screenshot(page, tmp_path, name, width):
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    assert png_size(path)[0] == width
    if os.environ.get("KLINIK_SCREENSHOTS"):
        (ROOT / os.environ["KLINIK_SCREENSHOTS"] / name).write_bytes(path.read_bytes())


def numbers(page, selector) -> dict[str, str]:
    """The figures of a table or list on the page, by their data-key."""
    return page.eval_on_selector_all(
        selector,
        "cells => Object.fromEntries(cells.map(c => [c.closest('[data-key]').dataset.key, c.textContent.trim()]))",
    )


# Every chart on the page as Chart.js holds it: what it draws (labels, each dataset's values, the
# pixel length of each bar) and how many pixels of its canvas are painted.
DRAWN = """canvases => canvases.map(canvas => {
  const chart = Chart.getChart(canvas);
  const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) painted++;
  return {
    key: JSON.parse(canvas.dataset.chart).key, type: chart.config.type, visible: canvas.offsetWidth > 0,
    labels: chart.data.labels.map(l => [].concat(l).join(' ')), painted,
    datasets: chart.data.datasets.map((d, i) => ({
      label: d.label, values: d.data,
      lengths: chart.getDatasetMeta(i).data.map(bar => Math.abs(bar.horizontal ? bar.x - bar.base : bar.y - bar.base)),
    })),
  };
})"""
BOOKING_LABELS = {
    "started": "Mulai membuat janji",
    "requested": "Permintaan terkirim ke staf",
    "confirmed": "Dikonfirmasi staf",
    "rejected": "Ditolak staf",
    "cancelled": "Dibatalkan pasien",
}
CASE_TITLES = {"case:human_agent": "Kasus: Ingin bicara dengan staf", "case:booking": "Kasus: Permintaan janji"}


def expected_charts(report: dict) -> dict[str, tuple[list, list]]:
    """Each chart's labels and its datasets' (label, values), from the JSON API's figures."""
    days, rates, first = report["messages"]["per_day"], report["outcomes"]["rates"], report["cases"]["first_reply"]
    satisfaction = report["satisfaction"]
    titles = [s["title"] or CASE_TITLES[s["subject"]] for s in satisfaction]
    months = {"11": "Nov"}
    return {
        "messages": (
            [f"{int(d['day'][8:])} {months[d['day'][5:7]]}" for d in days],
            [
                (label, [d[key] for d in days])
                for key, label in (("patient", "Pesan pasien"), ("bot", "Balasan bot"), ("staff", "Balasan staf"))
            ],
        ),  # fmt: skip
        "outcomes": (
            ["Persen"],
            [
                (label, [round(rates[key] * 100, 1)])
                for key, label in (("answer", "Dijawab"), ("clarify", "Ditanya balik"), ("fallback", "Tidak terjawab"))
            ],
        ),  # fmt: skip
        "intents": ([i["title"] for i in report["intents"]], [("Jumlah", [i["count"] for i in report["intents"]])]),
        "triage": (
            ["Darurat (IGD / 119)", "Perlu ke dokter"],
            [("Jumlah", [report["triage"]["emergency"], report["triage"]["doctor"]])],
        ),
        "bookings": (list(BOOKING_LABELS.values()), [("Jumlah", [report["bookings"][k] for k in BOOKING_LABELS])]),
        "cases_opened": (
            ["Permintaan janji", "Ingin bicara dengan staf", "DARURAT"],
            [("Jumlah", [report["cases"]["opened"][k] for k in ("booking", "human_agent", "urgent")])],
        ),
        "first_reply": (
            ["Median", "Persentil ke-90"],
            [("Menit", [round(first["median_seconds"] / 60, 1), round(first["p90_seconds"] / 60, 1)])],
        ),
        "satisfaction": (
            titles,
            [
                ("Membantu", [s["helpful"] for s in satisfaction]),
                ("Kurang", [s["not_helpful"] for s in satisfaction]),
                ("Tidak menjawab", [s["asked"] - s["helpful"] - s["not_helpful"] for s in satisfaction]),
            ],
        ),
    }


def assert_charts_drawn(page, report: dict):
    """Every chart is a Chart.js bar chart on a painted, visible canvas, with one bar per figure
    of the JSON API, each bar's length zero exactly when its figure is."""
    page.wait_for_function("document.querySelectorAll('figure.chart:not([hidden]) canvas').length === 8")
    drawn = {chart["key"]: chart for chart in page.eval_on_selector_all("canvas[data-chart]", DRAWN)}
    expected = expected_charts(report)
    assert list(drawn) == list(expected)
    for key, (labels, datasets) in expected.items():
        chart = drawn[key]
        assert chart["type"] == "bar" and chart["visible"] and chart["painted"] > 500, key
        assert chart["labels"] == labels, key
        assert [(d["label"], d["values"]) for d in chart["datasets"]] == datasets, key
        for dataset in chart["datasets"]:
            assert len(dataset["lengths"]) == len(labels), key
            assert [length > 0.5 for length in dataset["lengths"]] == [v > 0 for v in dataset["values"]], key
    longest = drawn["bookings"]["datasets"][0]
    assert longest["lengths"].index(max(longest["lengths"])) == longest["values"].index(max(longest["values"]))
    return drawn


def test_staff_read_a_week_of_figures_on_a_desktop_and_on_a_phone(browser, served, tmp_path):
    app, base = served
    token = app.extensions["klinik_accounts"].issue_token("sari")
    client = app.test_client()
    expected = client.get(f"/staff/api/report?{WEEK}", headers={"Authorization": f"Bearer {token}"}).json
    expected_csv = client.get(f"/staff/api/report.csv?{WEEK}", headers={"Authorization": f"Bearer {token}"}).get_data(
        as_text=True
    )
    assert expected["messages"]["total"]["patient"] > 30 and len(expected["satisfaction"]) >= 5

    context, page = login(browser, base, viewport=DESKTOP, accept_downloads=True)
    errors = []  # a CSP violation or a script error would show here
    page.on(
        "console",
        lambda m: (
            errors.append(m.text) if m.type == "error" and not m.location["url"].endswith("/favicon.ico") else None
        ),
    )
    page.click("nav >> text=Laporan")
    page.wait_for_url(f"{base}/staff/report")
    assert page.locator("nav.tabs a[aria-current=page]").inner_text() == "30 hari terakhir"
    page.click("nav.tabs >> text=7 hari terakhir")
    page.wait_for_url(f"{base}/staff/report?{WEEK}")
    assert page.inner_text("#period-text") == "20 Nov – 26 Nov (7 hari)"

    drawn = assert_charts_drawn(page, expected)
    assert [len(d["lengths"]) for d in drawn["messages"]["datasets"]] == [7, 7, 7]
    assert numbers(page, "#messages dl.totals dd") == {k: str(v) for k, v in expected["messages"]["total"].items()}
    assert not page.is_visible("#messages-table")
    page.click("#messages summary")
    assert page.is_visible("#messages-table")
    days = page.eval_on_selector_all(
        "#messages-table tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent.trim()))"
    )
    assert [row[1:] for row in days] == [
        [str(d["patient"]), str(d["bot"]), str(d["staff"])] for d in expected["messages"]["per_day"]
    ]
    assert numbers(page, "#outcome-table td:nth-child(2)") == {
        k: str(v) for k, v in expected["outcomes"]["counts"].items()
    }
    assert numbers(page, "#intent-table td.num") == {i["intent"]: str(i["count"]) for i in expected["intents"]}
    assert numbers(page, "#booking-table td.num") == {k: str(v) for k, v in expected["bookings"].items()}
    assert numbers(page, "#case-table td.num") == {k: str(v) for k, v in expected["cases"]["opened"].items()}
    assert numbers(page, "#satisfaction-table td:nth-child(3)") == {
        s["subject"]: str(s["helpful"]) for s in expected["satisfaction"]
    }
    assert page.inner_text("#first-reply [data-key=median_seconds]") == "10 mnt 0 dtk"
    assert page.locator("#danger-signs code", has_text="chest_pain").count() == 1
    assert fits_the_screen(page)
    screenshot(page, tmp_path, "laporan-desktop.png", DESKTOP["width"])

    with page.expect_download() as download:
        page.click("#csv")
    assert download.value.suggested_filename == "laporan-2026-11-20-2026-11-26.csv"
    assert Path(download.value.path()).read_bytes().decode("utf-8") == expected_csv

    page.fill("input[name=from]", "2026-11-26")
    page.fill("input[name=to]", "2026-11-26")
    page.click("#period button[type=submit]")
    page.wait_for_url(f"{base}/staff/report?from=2026-11-26&to=2026-11-26")
    assert page.inner_text("#period-text") == "26 Nov – 26 Nov (1 hari)"
    assert page.inner_text("#first-reply [data-key=median_seconds]") == "2 mnt 0 dtk"
    page.click("#unanswered a >> text=Ajarkan")
    page.wait_for_url(f"{base}/staff/unanswered#m-*")
    assert page.locator(page.url[page.url.index("#") :]).inner_text().startswith("kaki")
    assert errors == []
    context.close()

    phone, page = login(browser, base, viewport=PHONE)
    page.goto(f"{base}/staff/report?{WEEK}")
    assert_charts_drawn(page, expected)
    assert fits_the_screen(page)
    assert page.locator("#satisfaction-table").is_visible()
    screenshot(page, tmp_path, "laporan-phone.png", PHONE["width"])
    phone.close()


def test_the_report_reads_without_javascript(browser, served):
    app, base = served
    context, page = login(browser, base, viewport=PHONE, java_script_enabled=False)
    page.goto(f"{base}/staff/report?{WEEK}")
    page.click("#messages summary")  # <details> opens without a script
    assert page.is_visible("#messages-table") and page.locator("#messages-table tbody tr").count() == 7
    for table in (
        "#outcome-table",
        "#intent-table",
        "#triage-table",
        "#booking-table",
        "#case-table",
        "#satisfaction-table",
    ):
        assert page.locator(f"{table} tbody tr").count() >= 1, table
    assert page.locator("canvas[data-chart]").count() == 8 and page.locator("figure.chart:visible").count() == 0
    assert fits_the_screen(page)
    context.close()
