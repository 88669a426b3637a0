"""Load, short form: about 650 signed deliveries from 100 simulated patients over real HTTP,
16 at a time, against gunicorn with three workers, on SQLite and on PostgreSQL; retries,
concurrent duplicates and out-of-order deliveries mixed in (tests/load.py says how). Then the
database is checked message by message.

Flooding: each patient sends about 6 messages, under the default limit of 20 a minute
(RATE_LIMIT_PER_MINUTE, passed explicitly), so no message may be rate limited.
The long form, with figures: `python bench/soak.py --patients 300 --messages 5000`.
Times are never asserted.
"""

import load
from conftest import AUTH_TOKEN
from servers import gunicorn

PATIENTS, MESSAGES = 100, 650


def test_hundreds_of_patients_at_once_each_message_stored_and_answered_once(database_url, tmp_path):
    plan = load.make_plan(PATIENTS, MESSAGES)
    assert plan.retries and plan.concurrent_duplicates and plan.reversed_pairs and plan.concurrent_pairs
    log_path = tmp_path / "gunicorn.log"
    with gunicorn(database_url, log_path, workers=3, threads=4, migrate=False, RATE_LIMIT_PER_MINUTE="20") as base:
        results, _ = load.run(base, plan, AUTH_TOKEN, threads=16)
    report = load.verify(database_url, plan, results)
    assert report.problems == []
    assert len(results) == plan.deliveries >= MESSAGES * 0.9
    assert report.inbound == len(plan.messages()) and report.conversations == PATIENTS
    assert report.silent < report.inbound / 10  # only a patient flooding the chat meets silence
    log = log_path.read_text()
    assert '"level": "ERROR"' not in log and "Traceback" not in log
    assert "+628120" not in log  # phone numbers are masked
