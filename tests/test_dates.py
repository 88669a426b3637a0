"""Indonesian dates and times, on a table of phrasings, with `now` fixed.

now = Wednesday 25 November 2026, 10:00 in Jakarta. The clinic (knowledge/clinic.yaml) opens
Monday-Friday 09:00-18:00, Saturday 09:00-14:00, closed on Sunday.
"""

from datetime import date, datetime, time

import pytest

from bot.core.dates import (
    EITHER_DAY,
    INVALID_DATE,
    INVALID_TIME,
    JAKARTA,
    NO_DATE,
    NO_TIME,
    PAST,
    WHICH_DAY,
    check_slot,
    describe,
    is_open,
    next_opening,
    parse_when,
)

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=JAKARTA)
HOURS = {
    "monday": ("09:00", "18:00"),
    "tuesday": ("09:00", "18:00"),
    "wednesday": ("09:00", "18:00"),
    "thursday": ("09:00", "18:00"),
    "friday": ("09:00", "18:00"),
    "saturday": ("09:00", "14:00"),
    "sunday": None,
}
D = date
T = time

TABLE = [
    # relative days
    ("besok", D(2026, 11, 26), None, (NO_TIME,)),
    ("bsk jam 3", D(2026, 11, 26), T(15), ()),
    ("besok jam 3 sore", D(2026, 11, 26), T(15), ()),
    ("besok pagi", D(2026, 11, 26), T(9), ()),
    ("besok siang", D(2026, 11, 26), T(13), ()),
    ("besok sore", D(2026, 11, 26), T(16), ()),
    ("besok jam 7 malem", D(2026, 11, 26), T(19), ()),
    ("besok jam 8 mlm", D(2026, 11, 26), T(20), ()),
    ("besuk jam 10", D(2026, 11, 26), T(10), ()),
    ("lusa", D(2026, 11, 27), None, (NO_TIME,)),
    ("lusa jam 10 pagi", D(2026, 11, 27), T(10), ()),
    ("hari ini jam 2 siang", D(2026, 11, 25), T(14), ()),
    ("hari ini jam 4 sore", D(2026, 11, 25), T(16), ()),
    ("hr ini jam 11", D(2026, 11, 25), T(11), ()),
    ("nanti siang", D(2026, 11, 25), T(13), ()),
    ("nanti sore jam 5", D(2026, 11, 25), T(17), ()),
    ("sekarang", D(2026, 11, 25), None, (NO_TIME,)),
    ("hari ini jam 8 pagi", D(2026, 11, 25), T(8), (PAST,)),
    ("kemarin jam 3", D(2026, 11, 24), T(15), (PAST,)),
    # weekdays
    ("senin", D(2026, 11, 30), None, (NO_TIME,)),
    ("senin jam 10", D(2026, 11, 30), T(10), ()),
    ("selasa sore", D(2026, 12, 1), T(16), ()),
    ("kamis jam 2", D(2026, 11, 26), T(14), ()),
    ("jumat jam 9 pagi", D(2026, 11, 27), T(9), ()),
    ("jum'at jam 1 siang", D(2026, 11, 27), T(13), ()),
    ("sabtu jam 10", D(2026, 11, 28), T(10), ()),
    ("hari sabtu pagi", D(2026, 11, 28), T(9), ()),
    ("rabu jam 3", D(2026, 11, 25), T(15), ()),
    ("rabu jam 9", D(2026, 11, 25), T(9), (PAST,)),
    ("minggu jam 10", D(2026, 11, 29), T(10), ()),
    ("ahad pagi", D(2026, 11, 29), T(9), ()),
    ("jumat depan", D(2026, 12, 4), None, (NO_TIME,)),
    ("jumat depan jam 4 sore", D(2026, 12, 4), T(16), ()),
    ("senin depan jam 10", D(2026, 11, 30), T(10), ()),
    ("rabu depan jam 11", D(2026, 12, 2), T(11), ()),
    ("sabtu dpn jam 9", D(2026, 12, 5), T(9), ()),
    ("hari minggu depan jam 10", D(2026, 12, 6), T(10), ()),
    ("minggu depan", None, None, (WHICH_DAY, NO_TIME)),
    ("minggu depan jam 10", None, T(10), (WHICH_DAY,)),
    # a weekday of next week (now is Wednesday 25 November)
    ("kamis minggu depan jam 10", D(2026, 12, 3), T(10), ()),
    ("jumat pekan depan jam 2 siang", D(2026, 12, 4), T(14), ()),
    ("rabu minggu depan", D(2026, 12, 2), None, (NO_TIME,)),
    # two days offered as a choice: which one?
    ("senin atau selasa, jam 10", None, T(10), (EITHER_DAY,)),
    ("besok ato lusa", None, None, (EITHER_DAY, NO_TIME)),
    # several days named: the one ruled out is left, the one settled on wins
    ("besok sy ada meeting, jd senin aja", D(2026, 11, 30), None, (NO_TIME,)),
    ("mau booking senin jam 10, besok sy sibuk", D(2026, 11, 30), T(10), ()),
    ("sabtu gw ada kondangan, senin aja jm 5 sore", D(2026, 11, 30), T(17), ()),
    ("besok sibuk, senin aja, jam 10", D(2026, 11, 30), T(10), ()),
    ("besok, jam 3 sore", D(2026, 11, 26), T(15), ()),
    # Javanese and Sundanese words
    ("rebo isuk jam 9", D(2026, 11, 25), T(9), (PAST,)),
    ("kemis jam 10", D(2026, 11, 26), T(10), ()),
    ("senen jam 10", D(2026, 11, 30), T(10), ()),
    ("sesuk sonten jam 4", D(2026, 11, 26), T(16), ()),
    ("benjing jam 9", D(2026, 11, 26), T(9), ()),
    ("saptu jam 10", D(2026, 11, 28), T(10), ()),
    ("pekan depan aja", None, None, (WHICH_DAY, NO_TIME)),
    # dates
    ("tgl 5", D(2026, 12, 5), None, (NO_TIME,)),
    ("tgl 5 jam 11", D(2026, 12, 5), T(11), ()),
    ("tanggal 30 jam 10", D(2026, 11, 30), T(10), ()),
    ("tanggal 27 pagi", D(2026, 11, 27), T(9), ()),
    ("tgl. 26 jam 2", D(2026, 11, 26), T(14), ()),
    ("tgl 24 jam 10", D(2026, 12, 24), T(10), ()),
    ("5 des", D(2026, 12, 5), None, (NO_TIME,)),
    ("5 des jam 13.30", D(2026, 12, 5), T(13, 30), ()),
    ("5 desember jam 10", D(2026, 12, 5), T(10), ()),
    ("1 desember jam 9", D(2026, 12, 1), T(9), ()),
    ("30 nov jam 15:00", D(2026, 11, 30), T(15), ()),
    ("tanggal 2 januari jam 10", D(2027, 1, 2), T(10), ()),
    ("12 Desember 2026", D(2026, 12, 12), None, (NO_TIME,)),
    ("12 Desember 2026 pukul 15.00", D(2026, 12, 12), T(15), ()),
    ("20 agustus 2026 jam 10", D(2026, 8, 20), T(10), (PAST,)),
    ("5/12", D(2026, 12, 5), None, (NO_TIME,)),
    ("5/12 jam 9", D(2026, 12, 5), T(9), ()),
    ("05/12/2026 jam 10", D(2026, 12, 5), T(10), ()),
    ("1-12-26 jam 11", D(2026, 12, 1), T(11), ()),
    ("31/2 jam 10", None, T(10), (INVALID_DATE,)),
    ("31 februari", None, None, (INVALID_DATE, NO_TIME)),
    ("besok jam 25", D(2026, 11, 26), None, (INVALID_TIME, NO_TIME)),
    ("pukul 10.75", None, None, (NO_DATE, INVALID_TIME, NO_TIME)),
    # times
    ("jam 3", None, T(15), (NO_DATE,)),
    ("jam 10", None, T(10), (NO_DATE,)),
    ("jam 10 pagi", None, T(10), (NO_DATE,)),
    ("jam 12 siang", None, T(12), (NO_DATE,)),
    ("jam 1 siang", None, T(13), (NO_DATE,)),
    ("jam 7 malam", None, T(19), (NO_DATE,)),
    ("pukul 19.30", None, T(19, 30), (NO_DATE,)),
    ("pkl 14.15", None, T(14, 15), (NO_DATE,)),
    ("15:00", None, T(15), (NO_DATE,)),
    ("jam 15", None, T(15), (NO_DATE,)),
    ("setengah 4 sore", None, T(15, 30), (NO_DATE,)),
    ("setengah 10", None, T(9, 30), (NO_DATE,)),
    ("jam 3an", None, T(15), (NO_DATE,)),
    ("jam sembilan pagi", None, T(9), (NO_DATE,)),
    ("jam dua siang", None, T(14), (NO_DATE,)),
    ("pukul sepuluh", None, T(10), (NO_DATE,)),
    ("sore", None, T(16), (NO_DATE,)),
    ("jam 3 pm", None, T(15), (NO_DATE,)),
    ("jam 11 am", None, T(11), (NO_DATE,)),
    # in a sentence
    ("mau booking akupuntur besok jam 3", D(2026, 11, 26), T(15), ()),
    ("bisa reservasi buat sabtu sore?", D(2026, 11, 28), T(16), ()),
    ("kalau kamis jam 10 pagi ada yang kosong kak", D(2026, 11, 26), T(10), ()),
    ("saya bisanya tgl 3 jam 4 sore", D(2026, 12, 3), T(16), ()),
    ("jam 4 besok bisa?", D(2026, 11, 26), T(16), ()),
    ("besok sore jam setengah 5", D(2026, 11, 26), T(16, 30), ()),
    ("Jumat, 27 November 2026 pukul 10.00", D(2026, 11, 27), T(10), ()),
    ("jam 4 sore tanggal 2 maret 2027", D(2027, 3, 2), T(16), ()),
    ("jam 2 siang tgl 20 januari", D(2027, 1, 20), T(14), ()),
    ("tgl 28.12.2026 jam 10", D(2026, 12, 28), T(10), ()),
    ("tgl 28.12 jam 10", D(2026, 12, 28), T(10), ()),
    ("tgl 31 jam 10", D(2026, 12, 31), T(10), ()),
    ("besok jam 12 malam", D(2026, 11, 26), T(0), ()),
    ("31/12/9999 jam 23", None, T(23), (INVALID_DATE,)),
    ("terserah kak", None, None, (NO_DATE, NO_TIME)),
    ("", None, None, (NO_DATE, NO_TIME)),
    ("saya mau 2 sesi", None, None, (NO_DATE, NO_TIME)),
]


@pytest.mark.parametrize("text, day, at, problems", TABLE, ids=[row[0] or "empty" for row in TABLE])
def test_phrasings(text, day, at, problems):
    when = parse_when(text, NOW)
    assert (when.day, when.at, when.problems) == (day, at, problems)


def test_table_is_large_enough():
    assert len(TABLE) >= 80


def test_a_month_already_past_this_year_means_next_year():
    december = datetime(2026, 12, 20, 10, 0, tzinfo=JAKARTA)
    assert parse_when("5 jan jam 10", december).day == date(2027, 1, 5)
    assert parse_when("tgl 3 jam 10", december).day == date(2027, 1, 3)


@pytest.mark.parametrize(
    "text, ok, reason, first_suggestion",
    [
        ("besok jam 3", True, "", None),
        ("besok jam 17.30", True, "", None),
        ("besok jam 17.45", False, "after_closing", datetime(2026, 11, 26, 17, 30, tzinfo=JAKARTA)),
        ("besok jam 8 pagi", False, "before_opening", datetime(2026, 11, 26, 9, 0, tzinfo=JAKARTA)),
        ("besok jam 7 malam", False, "after_closing", datetime(2026, 11, 26, 17, 30, tzinfo=JAKARTA)),
        ("minggu jam 10", False, "closed_day", datetime(2026, 11, 30, 10, 0, tzinfo=JAKARTA)),
        ("sabtu jam 3 sore", False, "after_closing", datetime(2026, 11, 28, 13, 30, tzinfo=JAKARTA)),
        ("sabtu jam 10", True, "", None),
    ],
)
def test_slots_are_checked_against_opening_hours(text, ok, reason, first_suggestion):
    check = check_slot(parse_when(text, NOW).moment(), HOURS, NOW)
    assert (check.ok, check.reason) == (ok, reason)
    if first_suggestion:
        assert check.suggestions[0] == first_suggestion
        assert len(check.suggestions) == 3
        assert all(s > NOW for s in check.suggestions)
        assert all(check_slot(s, HOURS, NOW).ok for s in check.suggestions)


def test_suggestions_never_lie_in_the_past():
    late = datetime(2026, 11, 25, 17, 0, tzinfo=JAKARTA)
    check = check_slot(datetime(2026, 11, 25, 8, 0, tzinfo=JAKARTA), HOURS, late)
    assert check.suggestions[0] == datetime(2026, 11, 25, 17, 0, tzinfo=JAKARTA)
    assert all(s >= late for s in check.suggestions)


def test_opening_times():
    assert is_open(NOW, HOURS)
    saturday_evening = datetime(2026, 11, 28, 15, 0, tzinfo=JAKARTA)
    assert not is_open(saturday_evening, HOURS)
    assert next_opening(saturday_evening, HOURS) == datetime(2026, 11, 30, 9, 0, tzinfo=JAKARTA)
    assert next_opening(NOW, HOURS) == NOW


def test_describe_in_indonesian():
    assert describe(datetime(2026, 11, 26, 15, 0, tzinfo=JAKARTA)) == "Kamis, 26 November 2026 pukul 15.00"
