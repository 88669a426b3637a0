"""Log lines: structured, phone numbers masked, message bodies never at INFO."""

import json
import logging
import re

import pytest
from conftest import signed_post

from bot.logs import StructuredFormatter, mask_phone


@pytest.mark.parametrize(
    "raw, masked",
    [
        ("whatsapp:+6281234565678", "whatsapp:+62812****5678"),
        ("+62 812-3456-5678", "+62812****5678"),
        ("6281234565678", "62812****5678"),
        ("whatsapp:+14155238886", "whatsapp:+14155****8886"),
        ("SM0123456789abcdef", "SM0123456789abcdef"),
        ("jam 19.30 tanggal 5", "jam 19.30 tanggal 5"),
        (None, None),
    ],
)
def test_phone_numbers_are_masked(raw, masked):
    assert mask_phone(raw) == masked


def test_formatter_masks_message_and_fields():
    record = logging.LogRecord("klinik", logging.INFO, __file__, 1, "from %s", ("+6281234565678",), None)
    record.fields = {"from": "whatsapp:+6281234565678", "count": 3}
    line = json.loads(StructuredFormatter().format(record))
    assert line["event"] == "from +62812****5678"
    assert line["from"] == "whatsapp:+62812****5678" and line["count"] == 3
    assert line["level"] == "INFO" and line["logger"] == "klinik"


def test_a_webhook_request_logs_no_number_and_no_body(client, caplog):
    body = "betis saya kedutan terus rahasia-pasien-xyz"
    with caplog.at_level(logging.DEBUG):
        signed_post(
            client, "/webhook/whatsapp", {"MessageSid": "SMlog", "From": "whatsapp:+6281234565678", "Body": body}
        )
        client.post("/webhook/whatsapp", data={"MessageSid": "SMlog2", "From": "whatsapp:+6289876543210", "Body": body})
    formatter = StructuredFormatter()
    lines = [formatter.format(record) for record in caplog.records]
    text = "\n".join(lines)
    assert any('"event": "inbound"' in line and "+62812****5678" in line for line in lines)
    assert any("bad signature" in line and "+62898****3210" in line for line in lines)
    assert not re.search(r"\d{8,}", re.sub(r'"time": "[^"]+"', "", text))
    assert "rahasia-pasien-xyz" not in text


def test_the_session_wide_watch_catches_an_unmasked_number_and_nothing_else():
    """The check that fails the run when any log line holds a full phone number."""
    from conftest import PhoneWatch

    watch = PhoneWatch()
    leaky = logging.LogRecord("klinik.x", logging.INFO, __file__, 1, "to", (), None)
    leaky.fields = {"to": "whatsapp:+6281234567890"}
    watch.emit(leaky)
    for message in ("to whatsapp:+62812****7890", "sid SM6281234567890abcdef", "case 12345678901"):
        watch.emit(logging.LogRecord("klinik.x", logging.INFO, __file__, 1, message, (), None))
    assert watch.leaks == ["klinik.x: to whatsapp:+6281234567890"]
