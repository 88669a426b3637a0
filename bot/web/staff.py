"""The staff console (HTML, Indonesian, phone-first) and its JSON API, over bot.services.console.

- Pages under /staff need a login (session cookie: HttpOnly, SameSite=Lax, Secure unless in dev
  mode); every form carries a CSRF token (Flask-WTF), checked on every POST.
- The API under /staff/api takes only `Authorization: Bearer <token>` (no cookies, so no CSRF).
- Patient text is only ever rendered by Jinja's autoescaping or set as textContent; the
  Content-Security-Policy allows scripts from this origin only, so injected markup cannot run.
"""

from __future__ import annotations

import logging
import math
import secrets
import time
from datetime import datetime, timedelta
from functools import wraps
from pathlib import Path

import yaml
from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf.csrf import CSRFError, CSRFProtect

from bot.config import ROOT, Config
from bot.core import dates
from bot.services.accounts import Accounts
from bot.services.console import VIEWS, Console, ConsoleError
from bot.services.insights import Insights, ReportError
from bot.services.learning import LearningError, Teacher
from bot.web import staff_report

log = logging.getLogger("klinik.staff")
pages = Blueprint("staff", __name__, url_prefix="/staff")
api = Blueprint("staff_api", __name__, url_prefix="/staff/api")
csrf = CSRFProtect()
TEXTS = yaml.safe_load(
    (Path(__file__).resolve().parent.parent / "templates" / "staff" / "texts.yaml").read_text(encoding="utf-8")
)
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
)
_SECRET_FILE = ROOT / "instance" / "secret_key"
SESSION_HOURS = 12  # absolute: a login lasts a working day, however active the tab


def init_app(
    app: Flask, config: Config, console: Console, teacher: Teacher, accounts: Accounts, insights: Insights
) -> None:
    app.extensions["klinik_console"] = console
    app.extensions["klinik_teacher"] = teacher
    app.extensions["klinik_accounts"] = accounts
    app.extensions["klinik_insights"] = insights
    app.secret_key = _secret_key(config)
    app.config.update(
        SESSION_COOKIE_NAME="klinik_staff",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=not config.dev_mode,
        PERMANENT_SESSION_LIFETIME=SESSION_HOURS * 3600,
        SESSION_REFRESH_EACH_REQUEST=False,  # the pages poll: a sliding lifetime would never end
        WTF_CSRF_CHECK_DEFAULT=False,  # checked by the console pages only; the webhooks are signed
        WTF_CSRF_SSL_STRICT=not config.dev_mode,
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session: a reply typed slowly is not lost
    )
    csrf.init_app(app)
    app.jinja_env.filters["jakarta"] = _jakarta
    app.jinja_env.filters["waited"] = _waited
    app.jinja_env.filters["duration"] = lambda seconds: staff_report.duration(seconds, TEXTS)
    app.jinja_env.filters["percent"] = lambda value: staff_report.percent_text(value, TEXTS)
    app.jinja_env.filters["day"] = _day
    app.jinja_env.globals["T"] = TEXTS
    app.register_blueprint(pages)
    app.register_blueprint(api)
    app.after_request(_security_headers)


def _secret_key(config: Config) -> str | None:
    """SECRET_KEY signs the session cookie. In dev mode one is made and kept under instance/;
    otherwise it must come from the environment, and without it nobody can log in."""
    if config.secret_key:
        return config.secret_key
    if config.dev_mode:
        if not _SECRET_FILE.exists():
            _SECRET_FILE.parent.mkdir(parents=True, exist_ok=True)
            _SECRET_FILE.write_text(secrets.token_hex(32))
            _SECRET_FILE.chmod(0o600)
        return _SECRET_FILE.read_text().strip()
    log.warning("SECRET_KEY is not set: the staff console refuses logins")
    return None


def _security_headers(response):
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if request.path.startswith(("/staff", "/simulator")):
        response.headers["Content-Security-Policy"] = CSP
        response.headers["Cache-Control"] = "no-store"
    return response


def _jakarta(value: str | datetime | None, style: str = "full") -> str:
    if not value:
        return "-"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    local = moment.astimezone(dates.JAKARTA)
    if style == "time":
        return local.strftime("%H.%M")
    return f"{local.day} {TEXTS['months'][local.month - 1]} {local:%H.%M}"


def _day(value: str) -> str:
    """2026-11-25 -> 25 Nov."""
    return staff_report.day_label(value, TEXTS)


def _waited(seconds: int) -> str:
    minutes = max(seconds // 60, 0)
    if minutes < 60:
        return TEXTS["waited_minutes"].format(n=minutes)
    hours = minutes // 60
    if hours < 48:
        return TEXTS["waited_hours"].format(h=hours, m=minutes % 60)
    return TEXTS["waited_days"].format(d=hours // 24)


def _console() -> Console:
    return current_app.extensions["klinik_console"]


def _teacher() -> Teacher:
    return current_app.extensions["klinik_teacher"]


def _accounts() -> Accounts:
    return current_app.extensions["klinik_accounts"]


def _insights() -> Insights:
    return current_app.extensions["klinik_insights"]


def _error_text(code: str, details: dict | None = None) -> str:
    """An error's Indonesian text, its placeholders filled ("-" for a detail not given)."""
    return TEXTS["errors"].get(code, TEXTS["errors"]["unknown"]).format_map(_Details(details or {}))


class _Details(dict):
    def __missing__(self, key: str) -> str:
        return "-"


# -- pages ------------------------------------------------------------------------------------


@pages.before_request
def _pages_guard():
    if not current_app.secret_key:
        return render_template("staff/message.html", title=TEXTS["login"], message=_error_text("no_secret_key")), 503
    if request.method == "POST":
        csrf.protect()
    if request.endpoint == "staff.login":
        return None
    name = logged_in_staff()
    if name is None:
        session.clear()
        return redirect(url_for("staff.login", next=request.full_path if request.method == "GET" else None))
    g.staff = name
    return None


def logged_in_staff() -> str | None:
    """The staff member of this request's session cookie, if it is still good: signed, at most
    SESSION_HOURS old, and not ended by a logout, password change or disabled account."""
    if not current_app.secret_key:
        return None
    name, version, since = session.get("staff"), session.get("v"), session.get("since", 0)
    if not name or time.time() - since >= SESSION_HOURS * 3600:
        return None
    return name if _accounts().session_valid(name, version) else None


@pages.errorhandler(CSRFError)
def _csrf_failed(error):
    return render_template("staff/message.html", title=TEXTS["csrf_title"], message=TEXTS["csrf_message"]), 400


@pages.route("/login", methods=["GET", "POST"])
def login():
    error, status = None, 200
    if request.method == "POST":
        name = (request.form.get("name") or "").strip()[:80]
        password = request.form.get("password") or ""
        result = _accounts().login(name, password, request.remote_addr or "-")
        if result.throttled:
            seconds = max(math.ceil((result.locked_until - _accounts().clock()).total_seconds()), 1)
            error = _error_text(
                "throttled", {"time": _jakarta(result.locked_until, "time"), "minutes": math.ceil(seconds / 60)}
            )
            return render_template("staff/login.html", error=error), 429, {"Retry-After": str(seconds)}
        if result.name is not None:
            session.clear()
            session.permanent = True
            session.update(staff=result.name, v=result.session_version, since=int(time.time()))
            log.info("staff login", extra={"fields": {"staff": result.name}})
            target = request.args.get("next") or ""
            return redirect(
                target if target.startswith("/staff") and not target.startswith("//") else url_for("staff.queue")
            )
        log.warning("staff login failed", extra={"fields": {"address": request.remote_addr}})
        error, status = _error_text("bad_login"), 401
    return render_template("staff/login.html", error=error), status


@pages.post("/logout")
def logout():
    """Ends every session of the account (a phone left logged in is logged out too)."""
    _accounts().end_sessions(g.staff)
    session.clear()
    return redirect(url_for("staff.login"))


@pages.get("/")
def queue():
    view = request.args.get("view", "waiting")
    if view not in VIEWS:
        view = "waiting"
    return render_template("staff/queue.html", view=view, cases=_console().queue(view, g.staff))


@pages.get("/queue.part")
def queue_part():
    view = request.args.get("view", "waiting")
    if view not in VIEWS:
        abort(400)
    return render_template("staff/_queue_rows.html", view=view, cases=_console().queue(view, g.staff))


@pages.get("/cases/<int:case_id>")
def case(case_id: int):
    try:
        data = _console().case(case_id, viewer=g.staff)
    except ConsoleError:
        abort(404)
    notice = request.args.get("notice")
    error = request.args.get("error")
    return render_template(
        "staff/case.html",
        case=data,
        notice=TEXTS["notices"].get(notice) if notice else None,
        # Only known texts, filled from the database: a crafted link cannot put words on the page.
        error=_error_text(error, _error_details(error, case_id, data)) if error in TEXTS["errors"] else None,
    )


def _error_details(error: str, case_id: int, data: dict) -> dict:
    """What an error text names, read from the database (the case that has the chat only when
    the error is about it: the page's periodic refreshes do not look it up)."""
    details = {"by": data["claimed_by"] or "-"}
    if error == "other_case_open":
        details["case"] = _console().other_open_case(case_id) or "-"
    return details


@pages.get("/cases/<int:case_id>/transcript.part")
def transcript_part(case_id: int):
    try:
        data = _console().case(case_id)
    except ConsoleError:
        abort(404)
    return render_template("staff/_transcript.html", case=data)


def _case_action(case_id: int, notice: str, action):
    try:
        outcome = action()
    except ConsoleError as error:
        return redirect(url_for("staff.case", case_id=case_id, error=error.code))
    if outcome is False:  # done, but the patient could not be told (WhatsApp's 24-hour window)
        notice = f"{notice}_silent"
    return redirect(url_for("staff.case", case_id=case_id, notice=notice))


@pages.post("/cases/<int:case_id>/claim")
def claim(case_id: int):
    return _case_action(case_id, "claimed", lambda: _console().claim(case_id, g.staff))


@pages.post("/cases/<int:case_id>/reply")
def reply(case_id: int):
    return _case_action(case_id, "sent", lambda: _console().reply(case_id, g.staff, request.form.get("text", "")))


@pages.post("/cases/<int:case_id>/template")
def template(case_id: int):
    return _case_action(case_id, "sent", lambda: _console().send_template(case_id, g.staff))


# A booking decision and the notice staff read after it.
_BOOKING_NOTICES = {"confirm": "booking_confirmed", "reject": "booking_rejected", "cancel": "booking_cancelled"}


@pages.post("/cases/<int:case_id>/booking")
def booking(case_id: int):
    decision = request.form.get("decision")
    if decision not in _BOOKING_NOTICES:
        return redirect(url_for("staff.case", case_id=case_id, error="bad_decision"))
    note = request.form.get("note", "")
    return _case_action(
        case_id, _BOOKING_NOTICES[decision], lambda: _console().decide(case_id, g.staff, decision, note) is not None
    )


@pages.post("/cases/<int:case_id>/booking/move")
def move_booking(case_id: int):
    start = _new_start(request.form.get("day", ""), request.form.get("time", ""))
    if start is None:
        return redirect(url_for("staff.case", case_id=case_id, error="bad_time"))
    note = request.form.get("note", "")
    return _case_action(
        case_id, "booking_moved", lambda: _console().move_booking(case_id, g.staff, start, note) is not None
    )


def _new_start(day: str, at: str) -> datetime | None:
    """The date ("2026-12-10") and time ("15:00") of the console's form, in Asia/Jakarta; None
    when they are not one."""
    try:
        start = datetime.fromisoformat(f"{day.strip()}T{at.strip()}")
    except ValueError:
        return None
    return start.replace(tzinfo=dates.JAKARTA) if start.tzinfo is None else None


@pages.post("/cases/<int:case_id>/close")
def close(case_id: int):
    return _case_action(case_id, "closed", lambda: _console().close(case_id, g.staff))


@pages.get("/cases/<int:case_id>/export.json")
def export(case_id: int):
    try:
        data = _console().export_patient(case_id, g.staff)
    except ConsoleError as error:
        return redirect(url_for("staff.case", case_id=case_id, error=error.code))
    response = jsonify(data)
    response.headers["Content-Disposition"] = f'attachment; filename="pasien-kasus-{case_id}.json"'
    return response


@pages.post("/cases/<int:case_id>/erase")
def erase(case_id: int):
    if request.form.get("confirm") != "yes":
        return redirect(url_for("staff.case", case_id=case_id, error="erase_unconfirmed"))
    return _case_action(case_id, "erased", lambda: _console().erase_patient(case_id, g.staff))


@pages.get("/audit")
def audit():
    return render_template("staff/audit.html", entries=_console().audit_log())


@pages.get("/unanswered")
def unanswered():
    error = request.args.get("error")
    return render_template(
        "staff/unanswered.html",
        groups=_teacher().unanswered(),
        intents=_teacher().intents(),
        titles=dict(_teacher().intents()),
        notice=TEXTS["notices"].get(request.args.get("notice", "")),
        error=_error_text(error) if error else None,
        knowledge_error=_teacher().engines.last_error,
    )


@pages.post("/unanswered/<int:message_id>")
def review(message_id: int):
    try:
        if request.form.get("action") == "dismiss":
            _teacher().dismiss(message_id, g.staff)
            notice = "dismissed"
        else:
            _teacher().learn(message_id, request.form.get("intent", ""), g.staff)
            notice = "learned"
    except LearningError as error:
        if error.detail:
            log.warning("learned example refused", extra={"fields": {"message": message_id}})
        return redirect(url_for("staff.unanswered", error=f"learn_{error.code}"))
    return redirect(url_for("staff.unanswered", notice=notice))


# Shortcut periods on the report page, in days up to today.
REPORT_PRESETS = (7, 30, 90)


@pages.get("/report")
def report():
    error = None
    try:
        period = _insights().period(request.args.get("from"), request.args.get("to"))
    except ReportError as refused:
        error, period = _error_text(refused.code), _insights().period()
    data = _insights().report(period)
    today = _insights().period().end
    presets = [(days, (today - timedelta(days=days - 1)).isoformat(), today.isoformat()) for days in REPORT_PRESETS]
    return render_template(
        "staff/report.html",
        report=data,
        sections=staff_report.sections(data, TEXTS),
        charts=staff_report.charts(data, TEXTS),
        error=error,
        presets=presets,
        subject_title=lambda item: staff_report.subject_title(item, TEXTS),
    )


@pages.get("/report.csv")
def report_csv():
    try:
        period = _insights().period(request.args.get("from"), request.args.get("to"))
    except ReportError as refused:
        return render_template(
            "staff/message.html", title=TEXTS["report"]["title"], message=_error_text(refused.code)
        ), 400
    return _csv(_insights().report(period))


def _csv(data: dict) -> Response:
    period = data["period"]
    response = Response(staff_report.to_csv(data, TEXTS), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="laporan-{period["from"]}-{period["to"]}.csv"'
    return response


# -- JSON API ---------------------------------------------------------------------------------


def _bearer(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else ""
        name = _accounts().by_token(token) if token else None
        if name is None:
            response = jsonify(error="unauthorized", message=_error_text("unauthorized"))
            response.headers["WWW-Authenticate"] = 'Bearer realm="klinik-staff"'
            return response, 401
        g.staff = name
        try:
            return view(*args, **kwargs)
        except ConsoleError as error:
            return jsonify(
                error=error.code, message=_error_text(error.code, error.details), **error.details
            ), error.http_status
        except LearningError as error:
            status = 404 if error.code == "not_found" else 409 if error.code == "already_reviewed" else 400
            return jsonify(
                error=error.code, message=_error_text(f"learn_{error.code}"), detail=error.detail or None
            ), status
        except ReportError as error:
            return jsonify(error=error.code, message=_error_text(error.code)), 400

    return wrapper


def _body() -> dict:
    data = request.get_json(silent=True)
    return data if isinstance(data, dict) else {}


@api.get("/cases")
@_bearer
def api_cases():
    return jsonify(cases=_console().queue(request.args.get("status", "waiting"), g.staff))


@api.get("/cases/<int:case_id>")
@_bearer
def api_case(case_id: int):
    return jsonify(_console().case(case_id, viewer=g.staff))


@api.get("/cases/<int:case_id>/export")
@_bearer
def api_export(case_id: int):
    return jsonify(_console().export_patient(case_id, g.staff))


@api.post("/cases/<int:case_id>/erase")
@_bearer
def api_erase(case_id: int):
    _console().erase_patient(case_id, g.staff)
    return jsonify(_console().case(case_id))


@api.post("/cases/<int:case_id>/claim")
@_bearer
def api_claim(case_id: int):
    _console().claim(case_id, g.staff)
    return jsonify(_console().case(case_id))


@api.post("/cases/<int:case_id>/reply")
@_bearer
def api_reply(case_id: int):
    message_id = _console().reply(case_id, g.staff, str(_body().get("text") or ""))
    return jsonify(message_id=message_id), 201


@api.post("/cases/<int:case_id>/template")
@_bearer
def api_template(case_id: int):
    return jsonify(message_id=_console().send_template(case_id, g.staff)), 201


@api.post("/cases/<int:case_id>/booking")
@_bearer
def api_booking(case_id: int):
    body = _body()
    decision = body.get("decision")
    if decision not in _BOOKING_NOTICES:
        return jsonify(error="bad_decision", message=_error_text("bad_decision")), 400
    message_id = _console().decide(case_id, g.staff, decision, str(body.get("note") or ""))
    return jsonify(message_id=message_id, patient_told=message_id is not None, case=_console().case(case_id))


@api.post("/cases/<int:case_id>/booking/move")
@_bearer
def api_move_booking(case_id: int):
    body = _body()
    day, _, at = str(body.get("start") or "").partition("T")
    start = _new_start(day, at)
    if start is None:
        return jsonify(error="bad_time", message=_error_text("bad_time")), 400
    message_id = _console().move_booking(case_id, g.staff, start, str(body.get("note") or ""))
    return jsonify(message_id=message_id, patient_told=message_id is not None, case=_console().case(case_id))


@api.post("/cases/<int:case_id>/close")
@_bearer
def api_close(case_id: int):
    _console().close(case_id, g.staff)
    return jsonify(_console().case(case_id))


@api.get("/unanswered")
@_bearer
def api_unanswered():
    return jsonify(groups=_teacher().unanswered())


@api.post("/unanswered/<int:message_id>/learn")
@_bearer
def api_learn(message_id: int):
    _teacher().learn(message_id, str(_body().get("intent") or ""), g.staff)
    return jsonify(status="learned")


@api.post("/unanswered/<int:message_id>/dismiss")
@_bearer
def api_dismiss(message_id: int):
    _teacher().dismiss(message_id, g.staff)
    return jsonify(status="dismissed")


@api.get("/report")
@_bearer
def api_report():
    return jsonify(_insights().report(_insights().period(request.args.get("from"), request.args.get("to"))))


@api.get("/report.csv")
@_bearer
def api_report_csv():
    return _csv(_insights().report(_insights().period(request.args.get("from"), request.args.get("to"))))
