"""The clinic's report (issue 21) over a seeded database, on SQLite and PostgreSQL: exact figures
for every chart, the CSV and the JSON API; the satisfaction answers stored and a 👎 in the
unanswered inbox; the case question sent when staff close a case; the counts surviving purges
and erasures without personal data; and the migration that fills them from what was stored."""

import csv
import html
import io
import json
import re
import threading
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from conftest import app_config
from helpers import PASSWORD, SEEDED, StaffBrowser, rows, say, seed_two_days
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from bot.core.dates import JAKARTA
from bot.services import insights, privacy
from bot.services.inbox import InboundMessage
from bot.store import migrate, storage
from bot.store.storage import DailyCount, FeedbackAnswer, HandoffCase, Message, OutboxItem
from bot.web import create_app

PERIOD = "from=2026-11-25&to=2026-11-26"


@pytest.fixture
def app(database_url, kb_copy, clock):
    application = create_app(app_config(database_url, secret_key="k", knowledge_dir=kb_copy))
    for key in ("klinik_inbox", "klinik_console", "klinik_insights", "klinik_teacher"):
        application.extensions[key].clock = clock
    application.extensions["klinik_accounts"].add("sari", PASSWORD)
    yield application
    application.extensions["klinik_database"].dispose()


@pytest.fixture
def seeded(app, clock):
    return seed_two_days(app, clock)


def api(app, path):
    token = app.extensions["klinik_accounts"].issue_token("sari")
    return app.test_client().get(f"/staff/api{path}", headers={"Authorization": f"Bearer {token}"})


def stored_replies(app) -> dict[tuple[str, str], int]:
    """Outbound messages in storage by Jakarta day and sender (bot or staff): what the report's
    counts must agree with."""
    counted = Counter()
    for message in rows(app, Message, Message.direction == "out"):
        counted[(message.created_at.astimezone(JAKARTA).date().isoformat(), message.sender)] += 1
    return counted


def report(app, period=PERIOD) -> dict:
    response = api(app, f"/report?{period}")
    assert response.status_code == 200, response.data
    return response.json


def test_each_chart_has_exact_figures(app, seeded):
    data = report(app)
    assert data["period"] == {"from": "2026-11-25", "to": "2026-11-26", "days": 2}
    replies = stored_replies(app)
    assert replies[("2026-11-25", "staff")] == 2 and replies[("2026-11-26", "staff")] == 1
    assert data["messages"]["per_day"] == [
        {"day": "2026-11-25", "patient": 10, "bot": replies[("2026-11-25", "bot")], "staff": 2},
        {"day": "2026-11-26", "patient": 8, "bot": replies[("2026-11-26", "bot")], "staff": 1},
    ]
    assert data["messages"]["total"] == {
        "patient": 18,
        "bot": sum(n for (_, who), n in replies.items() if who == "bot"),
        "staff": 3,
    }
    # Thanks (twice) are counted, but the chart of what patients ask leaves the conversation itself out.
    assert [(i["intent"], i["count"]) for i in data["intents"]] == [
        ("booking", 2),
        ("causes", 2),
        ("calf_cramp", 1),
        ("red_flag", 1),
    ]
    with Session(app.extensions["klinik_database"]) as session:
        counted = (
            session.execute(select(DailyCount.count).where(DailyCount.metric == "intent", DailyCount.label == "thanks"))
            .scalars()
            .all()
        )
    assert sum(counted) == 2
    assert data["intents"][1]["title"] == "Penyebab kedutan betis"
    assert data["outcomes"] == {
        "counts": {"answer": 8, "clarify": 1, "fallback": 2},
        "rates": {"answer": 0.7273, "clarify": 0.0909, "fallback": 0.1818},
        "other": {"booking_step": 4, "feedback": 3},
    }
    assert data["triage"] == {"emergency": 1, "doctor": 1, "danger_signs": [{"rule": "chest_pain", "count": 1}]}
    assert data["bookings"] == {"started": 2, "requested": 1, "confirmed": 1, "rejected": 0, "cancelled": 1}
    assert data["cases"] == {
        "opened": {"booking": 1, "human_agent": 1, "urgent": 1},
        "opened_total": 3,
        "closed": 2,
        "first_reply": {"count": 3, "median_seconds": 600, "p90_seconds": 1800},  # 120, 600 and 1800 seconds
    }
    assert data["satisfaction"] == [
        {
            "subject": "calf_cramp",
            "title": "Kram betis",
            "asked": 1,
            "helpful": 1,
            "not_helpful": 0,
            "share_helpful": 1.0,
        },
        {
            "subject": "case:human_agent",
            "title": None,
            "asked": 1,
            "helpful": 1,
            "not_helpful": 0,
            "share_helpful": 1.0,
        },
        {
            "subject": "causes",
            "title": "Penyebab kedutan betis",
            "asked": 1,
            "helpful": 0,
            "not_helpful": 1,
            "share_helpful": 0.0,
        },
        {"subject": "case:booking", "title": None, "asked": 1, "helpful": 0, "not_helpful": 0, "share_helpful": None},
    ]
    missed = {item["text"]: (item["count"], item["rated_down"]) for item in data["unanswered"]}
    assert missed == {"kaki": (1, False), "harga emas hari ini brp": (1, False), "jual kuota internet?": (1, False),
                      "knp betis kedutan trs": (1, True)}  # fmt: skip


def test_a_period_counts_only_its_days(app, seeded):
    data = report(app, "from=2026-11-26&to=2026-11-26")
    assert data["messages"]["total"]["patient"] == 8
    assert data["cases"]["opened"] == {"booking": 0, "human_agent": 0, "urgent": 1}
    assert data["cases"]["first_reply"] == {"count": 1, "median_seconds": 120, "p90_seconds": 120}
    assert [s["subject"] for s in data["satisfaction"]] == ["calf_cramp"]
    assert {item["text"] for item in data["unanswered"]} == {"kaki"}
    empty = report(app, "from=2026-10-01&to=2026-10-31")
    assert (
        empty["messages"]["total"] == {"patient": 0, "bot": 0, "staff": 0} and len(empty["messages"]["per_day"]) == 31
    )
    assert empty["outcomes"]["rates"] == {"answer": None, "clarify": None, "fallback": None}
    assert empty["cases"]["first_reply"] == {"count": 0, "median_seconds": None, "p90_seconds": None}


def test_the_default_period_is_the_last_30_days_and_a_bad_one_is_refused(app, seeded, clock):
    data = report(app, "")
    assert (data["period"]["from"], data["period"]["to"], data["period"]["days"]) == ("2026-10-28", "2026-11-26", 30)
    for bad in ("from=2026-11-26&to=2026-11-25", "from=kemarin", "from=2025-01-01&to=2026-11-26"):
        response = api(app, f"/report?{bad}")
        assert response.status_code == 400 and response.json["error"] == "bad_period", bad
    assert app.test_client().get("/staff/api/report").status_code == 401


EXPECTED_CSV = """bagian,tanggal,kunci,keterangan,nilai
messages_per_day,2026-11-25,patient,Pesan pasien,10
messages_per_day,2026-11-25,bot,Balasan bot,{bot1}
messages_per_day,2026-11-25,staff,Balasan staf,2
messages_per_day,2026-11-26,patient,Pesan pasien,8
messages_per_day,2026-11-26,bot,Balasan bot,{bot2}
messages_per_day,2026-11-26,staff,Balasan staf,1
messages,,patient,Pesan pasien,18
messages,,bot,Balasan bot,{bots}
messages,,staff,Balasan staf,3
intents,,booking,Buat janji temu,2
intents,,causes,Penyebab kedutan betis,2
intents,,calf_cramp,Kram betis,1
intents,,red_flag,Tanda bahaya,1
outcomes,,answer,Dijawab,8
outcomes,,clarify,Ditanya balik,1
outcomes,,fallback,Tidak terjawab,2
outcome_rates,,answer,Dijawab,72.7
outcome_rates,,clarify,Ditanya balik,9.1
outcome_rates,,fallback,Tidak terjawab,18.2
outcomes_other,,booking_step,Langkah membuat janji,4
outcomes_other,,feedback,Jawaban atas pertanyaan kepuasan,3
triage,,emergency,Darurat (IGD / 119),1
triage,,doctor,Perlu ke dokter,1
danger_signs,,chest_pain,chest_pain,1
bookings,,started,Mulai membuat janji,2
bookings,,requested,Permintaan terkirim ke staf,1
bookings,,confirmed,Dikonfirmasi staf,1
bookings,,rejected,Ditolak staf,0
bookings,,cancelled,Dibatalkan pasien,1
cases_opened,,booking,Permintaan janji,1
cases_opened,,human_agent,Ingin bicara dengan staf,1
cases_opened,,urgent,DARURAT,1
cases_closed,,total,Total,2
first_staff_reply,,count,Kasus yang sudah dibalas,3
first_staff_reply,,median_seconds,Median (detik),600
first_staff_reply,,p90_seconds,Persentil ke-90 (detik),1800
satisfaction_asked,,calf_cramp,Kram betis,1
satisfaction_asked,,case:human_agent,Kasus: Ingin bicara dengan staf,1
satisfaction_asked,,causes,Penyebab kedutan betis,1
satisfaction_asked,,case:booking,Kasus: Permintaan janji,1
satisfaction_helpful,,calf_cramp,Kram betis,1
satisfaction_helpful,,case:human_agent,Kasus: Ingin bicara dengan staf,1
satisfaction_helpful,,causes,Penyebab kedutan betis,0
satisfaction_helpful,,case:booking,Kasus: Permintaan janji,0
satisfaction_not_helpful,,calf_cramp,Kram betis,0
satisfaction_not_helpful,,case:human_agent,Kasus: Ingin bicara dengan staf,0
satisfaction_not_helpful,,causes,Penyebab kedutan betis,1
satisfaction_not_helpful,,case:booking,Kasus: Permintaan janji,0
satisfaction_share,,calf_cramp,Kram betis,100.0
satisfaction_share,,case:human_agent,Kasus: Ingin bicara dengan staf,100.0
satisfaction_share,,causes,Penyebab kedutan betis,0.0
satisfaction_share,,case:booking,Kasus: Permintaan janji,
"""


def test_every_csv_column_has_the_exact_figures_on_the_page_and_through_the_api(app, seeded):
    replies = stored_replies(app)
    bots = {day: replies[(day, "bot")] for day in ("2026-11-25", "2026-11-26")}
    expected = EXPECTED_CSV.format(bot1=bots["2026-11-25"], bot2=bots["2026-11-26"], bots=sum(bots.values())).replace(
        "\n", "\r\n"
    )
    sari = StaffBrowser(app)
    sari.login()
    page_csv = sari.get(f"/staff/report.csv?{PERIOD}")
    assert page_csv.mimetype == "text/csv"
    assert page_csv.headers["Content-Disposition"] == 'attachment; filename="laporan-2026-11-25-2026-11-26.csv"'
    assert page_csv.get_data(as_text=True) == expected
    assert api(app, f"/report.csv?{PERIOD}").get_data(as_text=True) == expected
    parsed = list(csv.DictReader(io.StringIO(expected)))
    assert {row["bagian"] for row in parsed} >= {"intents", "outcome_rates", "first_staff_reply", "satisfaction_share"}
    assert sari.get("/staff/report.csv?from=x").status_code == 400


def test_the_page_shows_every_chart_as_a_table_without_scripts(app, seeded):
    sari = StaffBrowser(app)
    sari.login()
    page = sari.get(f"/staff/report?{PERIOD}").get_data(as_text=True)
    assert "<h1>Laporan</h1>" in page and 'href="/staff/report"' in page  # in the console's menu
    assert '25 Nov – 26 Nov (2 hari)' in page
    for table in ("messages-table", "outcome-table", "intent-table", "triage-table", "danger-signs", "booking-table",
                  "case-table", "satisfaction-table"):  # fmt: skip
        assert f'<table class="{"data" if table == "messages-table" else "bars"}" id="{table}">' in page, table
    assert re.search(r'<tr data-key="causes"><th scope="row">Penyebab kedutan betis</th>'
                     r'<td class="num">1</td><td class="num">0</td>'
                     r'<td class="num">1</td>\s*<td class="num">0,0 %</td>', page)  # fmt: skip
    assert re.search(
        r'data-key="answer"><th scope="row"><span class="swatch part-answer"></span>Dijawab</th>'
        r'<td class="num">8</td><td class="num">72,7 %</td>',
        page,
    )
    assert (
        '<dd data-key="median_seconds">10 mnt 0 dtk</dd>' in page
        and '<dd data-key="p90_seconds">30 mnt 0 dtk</dd>' in page
    )
    assert '<span class="text">knp betis kedutan trs</span>' in page and re.search(
        r'href="/staff/unanswered#m-\d+">Ajarkan</a>', page
    )
    scripts = re.findall(r"<script\b[^>]*>", page)
    assert scripts == [
        f'<script src="/static/{name}" defer>' for name in ("console.js", "vendor/chart.umd.min.js", "report.js")
    ]
    assert ' style="' not in page and "<style" not in page  # the CSP allows neither
    figures = re.findall(r"<figure[^>]*>", page)
    assert len(figures) == 8 and all(figure.endswith(" hidden>") for figure in figures)  # shown once drawn
    refused = sari.get("/staff/report?from=2026-12-01&to=2026-11-01").get_data(as_text=True)
    assert "Periode tidak sah" in refused and "30 hari terakhir" in refused


def test_each_chart_draws_the_exact_figures_of_its_table(app, seeded):
    """The charts' figures, as the page hands them to Chart.js (data-chart): labels, then each
    series' label and values, in page order."""
    bots = [stored_replies(app)[(day, "bot")] for day in ("2026-11-25", "2026-11-26")]
    sari = StaffBrowser(app)
    sari.login()
    page = sari.get(f"/staff/report?{PERIOD}").get_data(as_text=True)
    charts = [json.loads(html.unescape(spec)) for spec in re.findall(r"<canvas [^>]*data-chart='([^']*)'", page)]
    drawn = {c["key"]: (c["labels"], [(s["label"], s["values"]) for s in c["series"]]) for c in charts}
    count = "Jumlah"
    assert drawn == {
        "messages": (
            ["25 Nov", "26 Nov"],
            [("Pesan pasien", [10, 8]), ("Balasan bot", bots), ("Balasan staf", [2, 1])],
        ),
        "outcomes": (["Persen"], [("Dijawab", [72.7]), ("Ditanya balik", [9.1]), ("Tidak terjawab", [18.2])]),
        "intents": (
            ["Buat janji temu", "Penyebab kedutan betis", "Kram betis", "Tanda bahaya"],
            [(count, [2, 2, 1, 1])],
        ),
        "triage": (["Darurat (IGD / 119)", "Perlu ke dokter"], [(count, [1, 1])]),
        "bookings": (
            [
                "Mulai membuat janji",
                "Permintaan terkirim ke staf",
                "Dikonfirmasi staf",
                "Ditolak staf",
                "Dibatalkan pasien",
            ],
            [(count, [2, 1, 1, 0, 1])],
        ),
        "cases_opened": (["Permintaan janji", "Ingin bicara dengan staf", "DARURAT"], [(count, [1, 1, 1])]),
        "first_reply": (["Median", "Persentil ke-90"], [("Menit", [10.0, 30.0])]),
        "satisfaction": (
            ["Kram betis", "Kasus: Ingin bicara dengan staf", "Penyebab kedutan betis", "Kasus: Permintaan janji"],
            [("Membantu", [1, 1, 0, 0]), ("Kurang", [0, 0, 1, 0]), ("Tidak menjawab", [0, 0, 0, 1])],
        ),
    }
    assert [c["key"] for c in charts] == list(drawn)  # in page order
    assert {
        c["key"]: (c["horizontal"], c["stacked"], c["unit"]) for c in charts if c["key"] in ("messages", "outcomes")
    } == {
        "messages": (False, True, "count"),
        "outcomes": (True, True, "percent"),
    }
    quiet = sari.get("/staff/report?from=2026-10-01&to=2026-10-02").get_data(as_text=True)
    assert [
        re.search(r"\"key\": \"(\w+)\"", spec)[1] for spec in re.findall(r"data-chart='([^']*)'", html.unescape(quiet))
    ] == [
        "messages",
        "triage",
        "bookings",
        "cases_opened",
    ]  # nothing to draw: no chart of topics, rates, reply times or satisfaction, and their tables say so


def test_a_thumbs_down_lands_in_the_unanswered_inbox_with_the_message_it_rated(app, seeded):
    (down,) = rows(app, FeedbackAnswer, FeedbackAnswer.helpful.is_(False))
    rated = rows(app, Message, Message.id == down.rated_message_id)[0]
    assert (rated.body, rated.intent, down.intent, down.case_id) == ("knp betis kedutan trs", "causes", "causes", None)
    answer = rows(app, Message, Message.id == down.message_id)[0]
    assert (answer.body, answer.intent, answer.reason, answer.actions) == (
        "👎",
        "feedback",
        "feedback_down",
        ["feedback:down"],
    )
    case_rating = rows(app, FeedbackAnswer, FeedbackAnswer.case_id.is_not(None))[0]
    assert (case_rating.helpful, case_rating.case_id, case_rating.intent) == (True, seeded["bayu"], None)
    exported = app.extensions["klinik_console"].export_patient(seeded["bayu"], "sari")["satisfaction_answers"]
    assert exported == [{"helpful": True, "topic": None, "case": seeded["bayu"], "at": case_rating.at.isoformat()}]
    sari = StaffBrowser(app)
    sari.login()
    inbox = sari.get("/staff/unanswered").get_data(as_text=True)
    assert f'<li id="m-{rated.id}">' in inbox
    assert "👎 pasien menilai jawaban (Penyebab kedutan betis) kurang membantu" in inbox
    sari.post(f"/staff/unanswered/{rated.id}", {"intent": "causes", "action": "learn"})
    assert f'id="m-{rated.id}"' not in sari.get("/staff/unanswered").get_data(as_text=True)
    assert "knp betis kedutan trs" not in {item["text"] for item in report(app)["unanswered"]}


def test_closing_a_case_sends_the_question_once_a_day_but_not_after_an_emergency_or_outside_the_window(
    app, seeded, clock
):
    questions = [i for i in rows(app, OutboxItem) if "Apakah bantuan kami membantu?" in i.body]
    assert [(i.case_id, i.to_address) for i in questions] == [
        (seeded["bayu"], SEEDED["bayu"]),
        (seeded["citra"], SEEDED["citra"]),
    ]
    console = app.extensions["klinik_console"]
    console.close(seeded["dedi"], "sari")  # urgent
    say(app, "sambungkan ke admin", "SMbayu-again", sender=SEEDED["bayu"])  # the day after his first case
    bayu = rows(app, HandoffCase, HandoffCase.status == "open")[0]
    console.close(bayu.id, "sari")
    say(app, "mau bicara dengan staf", "SMfajar-admin", sender=SEEDED["fajar"])
    clock.advance(hours=25)
    fajar = rows(app, HandoffCase, HandoffCase.status == "open")[0]
    console.close(fajar.id, "sari")  # WhatsApp's window has closed
    after = [i.case_id for i in rows(app, OutboxItem) if "Apakah bantuan kami membantu?" in i.body]
    assert after == [seeded["bayu"], seeded["citra"], bayu.id]


def test_counts_survive_purge_and_erasure_without_any_personal_data(app, seeded, clock):
    before = report(app)
    console = app.extensions["klinik_console"]
    console.erase_patient(seeded["bayu"], "sari")
    clock.advance(minutes=30)  # still Thursday in Jakarta
    say(app, "hapus data saya", "SMani-erase", sender=SEEDED["ani"])
    say(app, "ya hapus", "SMani-erase-yes", sender=SEEDED["ani"])
    erased = report(app)
    assert (
        rows(
            app,
            FeedbackAnswer,
            FeedbackAnswer.conversation_id.in_(
                [c.conversation_id for c in rows(app, HandoffCase, HandoffCase.id == seeded["bayu"])]
            ),
        )
        == []
    )
    assert erased["messages"]["total"] == {
        **before["messages"]["total"],
        "patient": 20,
        "bot": before["messages"]["total"]["bot"] + 2,
    }
    assert [(i["intent"], i["count"]) for i in erased["intents"]] == [
        ("booking", 2),
        ("causes", 2),
        ("calf_cramp", 1),
        ("privacy_erase", 1),
        ("red_flag", 1),
    ]
    assert erased["outcomes"]["counts"] == {"answer": 9, "clarify": 1, "fallback": 2}
    assert erased["outcomes"]["other"] == {"booking_step": 4, "feedback": 3, "privacy_step": 1}
    for key in ("triage", "bookings", "cases", "satisfaction"):
        assert erased[key] == before[key], key

    clock.advance(days=400)
    purged = privacy.purge(app.extensions["klinik_sessions"], clock() - timedelta(days=365), clock())
    assert purged.messages > 0
    after = report(app)
    assert {k: v for k, v in after.items() if k != "unanswered"} == {
        k: v for k, v in erased.items() if k != "unanswered"
    }
    assert after["unanswered"] == []  # the patients' phrasings went with their messages
    assert rows(app, FeedbackAnswer) == []

    with Session(app.extensions["klinik_database"]) as session:
        counts = session.execute(select(DailyCount.day, DailyCount.metric, DailyCount.label, DailyCount.count)).all()
    assert counts and all(re.fullmatch(r"[a-z0-9_:]*", label) for _, _, label, _ in counts)
    stored = json.dumps([list(map(str, row)) for row in counts])
    for secret in (*SEEDED.values(), "6281100000001", "Ani", "Bayu", "kedutan", "emas", "Dedi", "IGD"):
        assert secret not in stored, secret


def test_concurrent_patients_are_all_counted(app):
    inbox = app.extensions["klinik_inbox"]
    start = threading.Barrier(8)
    errors = []

    def deliver(n):
        start.wait()
        try:
            inbox.receive(
                InboundMessage(
                    message_id=f"SMconc{n}", sender=f"whatsapp:+62812000000{n:02d}", body="kenapa betis kedutan"
                )
            )
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=deliver, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    data = report(app, "from=2026-11-25&to=2026-11-25")
    assert data["messages"]["total"]["patient"] == 8 and data["intents"] == [
        {"intent": "causes", "title": "Penyebab kedutan betis", "count": 8}
    ]


def test_nearest_rank_percentiles():
    values = Counter({120: 1, 600: 1, 1800: 1})
    assert [insights.nearest_rank(values, p) for p in (0.5, 0.9, 1.0)] == [600, 1800, 1800]
    assert insights.nearest_rank(Counter({30: 9, 3600: 1}), 0.9) == 30
    assert insights.nearest_rank(Counter(), 0.5) is None


# -- the migration fills the counts from what was stored ----------------------------------------


def at_revision(database_url: str, tmp_path, revision: str):
    """An empty database at an older revision (SQLite: a new file; PostgreSQL: the schema
    dropped and migrated again)."""
    if database_url.startswith("sqlite"):
        database_url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = storage.make_engine(database_url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    migrate.upgrade(engine, revision)
    return engine


def table_at_0008(name: str):
    """A table as it was at revision 0008: the models' columns, under their names of then."""
    table = storage.Base.metadata.tables[name]
    if name != "conversations":
        return table
    return sa.table(name, *(sa.column("wa_id" if c.name == "address" else c.name, c.type) for c in table.columns))


def test_the_migration_counts_what_was_stored_before_it(database_url, tmp_path):
    engine = at_revision(database_url, tmp_path, "0008")
    at = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)  # 03:00 on Wednesday 25 November in Jakarta
    rows_ = {
        "conversations": [{"id": 1, "wa_id": "whatsapp:+6281300000001", "state": "{}", "created_at": at,
        "updated_at": at, "rate_window_count": 0}],
        "messages": [
            {"conversation_id": 1, "direction": "in", "body": "kenapa kedutan", "intent": "causes",
             "decision": "answer", "reason": "model", "created_at": at},
            {"conversation_id": 1, "direction": "out", "body": "karena...", "created_at": at},
            {"conversation_id": 1, "direction": "in", "body": "jual pulsa", "intent": "fallback",
             "decision": "fallback", "reason": "model", "created_at": at},
            {"conversation_id": 1, "direction": "in", "body": "dada nyeri", "intent": "red_flag", "decision": "answer",
             "reason": "triage:chest_pain", "actions": '["handoff:urgent"]',
             "created_at": at + timedelta(minutes=1)},
            {"conversation_id": 1, "direction": "in", "body": "mau booking", "intent": "booking", "decision": "answer",
             "reason": "model", "actions": '["start_booking"]', "created_at": at + timedelta(minutes=2)},
            {"conversation_id": 1, "direction": "out", "body": "ke IGD", "staff_name": "sari",
             "created_at": at + timedelta(minutes=6)},
        ],
        "bookings": [{"conversation_id": 1, "name": "Budi", "complaint": "", "start_at": at, "status": "confirmed",
        "created_at": at,
                      "updated_at": at + timedelta(days=1)}],
        "handoff_cases": [{"conversation_id": 1, "reason": "urgent", "status": "closed", "summary": "",
                           "alert_status": "none", "opened_at": at + timedelta(minutes=1),
                           "closed_at": at + timedelta(hours=1)}],
    }  # fmt: skip
    with engine.begin() as connection:
        for table, values in rows_.items():
            for row in values:
                defaults = {"position": 0, "rate_limited": False} if table == "messages" else {}
                connection.execute(table_at_0008(table).insert().values(**{**defaults, **row}))
    migrate.upgrade(engine)
    wednesday, thursday = date(2026, 11, 25), date(2026, 11, 26)
    with engine.connect() as connection:
        counts = {
            (day, metric, label): n
            for day, metric, label, n in connection.execute(
                select(DailyCount.day, DailyCount.metric, DailyCount.label, DailyCount.count)
            )
        }
        first_reply = connection.execute(select(HandoffCase.first_reply_at)).scalar_one()
    engine.dispose()
    assert counts == {
        (wednesday, "messages", "patient"): 4, (wednesday, "messages", "bot"): 1, (wednesday, "messages", "staff"): 1,
        (wednesday, "outcome", "answer"): 3, (wednesday, "outcome", "fallback"): 1,
        (wednesday, "intent", "causes"): 1, (wednesday, "intent", "red_flag"): 1, (wednesday, "intent", "booking"): 1,
        (wednesday, "triage", "emergency"): 1, (wednesday, "danger_sign", "chest_pain"): 1,
        (wednesday, "booking", "started"): 1, (wednesday, "booking", "requested"): 1, (thursday, "booking",
        "confirmed"): 1,
        (wednesday, "case_opened", "urgent"): 1, (wednesday, "case_closed", "urgent"): 1, (wednesday, "first_reply",
        "300"): 1,
    }  # fmt: skip
    assert first_reply == at + timedelta(minutes=6)
