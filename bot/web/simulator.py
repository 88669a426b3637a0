"""The WhatsApp simulator at /simulator: chat with the bot as a patient, in the browser.

Only in dev mode or for a logged-in staff member; anyone else gets 404. Every message goes
through the home channel's real webhook (bot.channels.patient_side), handed to this app in
process (WSGI) and signed here, so the browser never sees the channel's secret and the reply is
exactly what the platform would get. Outside dev mode only numbers of the test range
(bot.core.messages.TEST_NUMBER_PREFIX) can be used, so a simulated chat never mixes with a real
patient's. The page runs under the console's
Content-Security-Policy (scripts from this origin only); message text is set as textContent.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import yaml
from flask import Blueprint, Flask, Response, abort, current_app, g, jsonify, render_template, request
from flask_wtf.csrf import CSRFError

from bot import channels
from bot.config import ROOT, Config
from bot.core.messages import TEST_NUMBER_PREFIX, local_id
from bot.services.simulator import Simulator, SimulatorError
from bot.store import storage
from bot.web.staff import csrf, logged_in_staff

bp = Blueprint("simulator", __name__, url_prefix="/simulator")
TEXTS = yaml.safe_load(
    (Path(__file__).resolve().parent.parent / "templates" / "simulator" / "texts.yaml").read_text(encoding="utf-8")
)
# What the fake attachments claim to be (WhatsApp sends voice notes as Opus in Ogg).
MEDIA_TYPES = {"image": "image/jpeg", "voice": "audio/ogg"}
MAX_TEXT = 4096


def init_app(app: Flask, config: Config, simulator: Simulator) -> None:
    app.extensions["klinik_simulator"] = simulator
    app.config.setdefault("SIMULATOR_FIXTURES_DIR", ROOT / "tests" / "fixtures")
    app.register_blueprint(bp)


def _config() -> Config:
    return current_app.extensions["klinik_config"]


def _simulator() -> Simulator:
    return current_app.extensions["klinik_simulator"]


class _Refused(Exception):
    def __init__(self, code: str, http_status: int = 400, **details):
        super().__init__(code)
        self.code, self.http_status, self.details = code, http_status, details


@bp.before_request
def _guard():
    name = logged_in_staff()
    if name:
        g.staff = name
    elif not _config().dev_mode:
        abort(404)
    if request.method == "POST":
        csrf.protect()


@bp.errorhandler(_Refused)
def _refused(error: _Refused):
    return jsonify(error=error.code, message=TEXTS["errors"][error.code].format(**error.details)), error.http_status


@bp.errorhandler(CSRFError)
def _csrf_failed(_error):
    return jsonify(error="csrf", message=TEXTS["errors"]["csrf"]), 400


def _address(raw) -> str:
    """'+62 812-3456-7890', '0812...' or 'whatsapp:+62...' -> the address on the home channel
    ('whatsapp:+62...')."""
    number = local_id(re.sub(r"[\s\-().]", "", str(raw or "")))
    if number.startswith("0"):
        number = "+62" + number[1:]
    elif not number.startswith("+"):
        number = "+" + number
    if not re.fullmatch(r"\+\d{8,15}", number):
        raise _Refused("bad_number")
    if not _config().dev_mode and not number.startswith(TEST_NUMBER_PREFIX):
        raise _Refused("real_number")
    return channels.patient_side(_config()).address(number)


def _body() -> dict:
    data = request.get_json(silent=True)
    return data if isinstance(data, dict) else {}


@bp.get("/", strict_slashes=False)  # /simulator too: a redirect would tell outsiders it exists
def page():
    dev = _config().dev_mode
    return render_template(
        "simulator/page.html",
        S=TEXTS,
        dev=dev,
        number=local_id(channels.patient_side(_config()).fake_address()),
        recent=_simulator().recent(None if dev else TEST_NUMBER_PREFIX),
    )


@bp.post("/send")
def send():
    """One patient message through the webhook; the replies as the webhook gave them, with
    what the bot understood (from the stored inbound message)."""
    body = _body()
    address = _address(body.get("number"))
    text = str(body.get("text") or "")[:MAX_TEXT]
    media = MEDIA_TYPES.get(str(body.get("media") or ""))
    if not text.strip() and not media:
        raise _Refused("empty")
    name = " ".join(str(body.get("name") or "").split())[:200] or None
    sid = f"SMsim{uuid.uuid4().hex}"
    choice_id = str(body.get("choice_id") or "")[:500]  # a tapped button
    media_types = [media] if media else []
    reply = _webhook().send(address, text, profile_name=name, sid=sid, media=media_types, choice_id=choice_id)
    stored = _simulator().turn(sid) if reply.status == 200 else None
    if stored is None:
        raise _Refused("webhook", 502, status=reply.status)
    # The texts Twilio would send, paired with the stored replies they came from.
    replies = [dict(view, text=text) for view, text in zip(stored["replies"], reply.messages, strict=False)]
    return jsonify(inbound=stored["inbound"], replies=replies)


def _webhook():
    """A client for this very app's webhook, signing the URL the webhook checks."""
    config = _config()
    base = config.public_base_url or request.host_url.rstrip("/")
    return channels.patient_side(config).loopback(current_app._get_current_object(), base)


@bp.get("/messages")
def messages():
    """Messages of the conversation after id `after`: the chat's history, then staff replies."""
    address = _address(request.args.get("number"))
    after = request.args.get("after", "0")
    return jsonify(messages=_simulator().messages(address, int(after) if after.isdigit() else 0))


def _recording(number, name):
    address = _address(number)
    title = " ".join(str(name or "").split())[:200] or TEXTS["default_fixture_name"]
    try:
        return _simulator().record(address, title, storage.utcnow())
    except SimulatorError as error:
        raise _Refused(error.code, 404) from None


@bp.get("/fixture.yaml")
def download():
    recording = _recording(request.args.get("number"), request.args.get("name"))
    filename = re.sub(r"[^a-z0-9]+", "_", (request.args.get("name") or "simulator").lower()).strip("_") or "simulator"
    return Response(
        recording.yaml,
        mimetype="application/yaml",
        headers={"Content-Disposition": f'attachment; filename="{filename[:60]}.yaml"'},
    )


@bp.post("/fixture")
def fixture():
    """The conversation as a fixture: previewed, or (dev mode) written under tests/fixtures/."""
    body = _body()
    recording = _recording(body.get("number"), body.get("name"))
    written = None
    if body.get("path"):
        written = _write(str(body["path"]), recording.yaml)
    return jsonify(
        yaml=recording.yaml, turns=recording.turns, notes=[n.as_dict() for n in recording.notes], written=written
    )


def _write(relative: str, text: str) -> str:
    """Create a new .yaml file under the fixtures directory; never overwrite one."""
    if not _config().dev_mode:
        raise _Refused("dev_only", 403)
    root = Path(current_app.config["SIMULATOR_FIXTURES_DIR"]).resolve()
    target = (root / relative.strip()).resolve()
    if target.suffix != ".yaml" or not target.is_relative_to(root) or target == root:
        raise _Refused("bad_path")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with target.open("x", encoding="utf-8") as handle:
            handle.write(text)
    except FileExistsError:
        raise _Refused("exists", 409) from None
    shown = target.relative_to(ROOT) if target.is_relative_to(ROOT) else target
    return str(shown)
