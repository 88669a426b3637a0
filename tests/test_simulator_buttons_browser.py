"""The simulator shows a reply's choices as buttons (issue 18), in real headless Chromium against
the app served over HTTP: a booking goes on by clicking them (the name's "Ya", a slot), each click
reaching the webhook as a tapped WhatsApp button would (ButtonPayload and ButtonText); the
numbered text stays visible; the menu's ten topics show as list rows."""

import re

import pytest
from conftest import app_config
from helpers import PHONE, rows, serving

from bot.store.storage import Conversation, Message
from bot.web import create_app

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
LAST_BOT = "#sim-log .from-bot >> nth=-1"


@pytest.fixture
def page(browser, database_url, tmp_path, monkeypatch):
    monkeypatch.setenv("CONTENT_SIDS_FILE", str(tmp_path / "none.json"))  # no templates: the webhook answers all
    app = create_app(app_config(database_url, dev_mode=True, public_base_url="", secret_key="browser-test-key"))
    with serving(app, "localhost") as base:
        context = browser.new_context(viewport=PHONE, locale="id-ID")
        page = context.new_page()
        errors = []
        page.on(
            "console",
            lambda m: (
                errors.append(m.text) if m.type == "error" and not m.location["url"].endswith("/favicon.ico") else None
            ),
        )  # a CSP violation or a script error; not the browser's own favicon request
        page.goto(f"{base}/simulator/")
        page.fill("#sim-name", "Budi")
        yield app, page
        assert errors == []
        context.close()
    app.extensions["klinik_database"].dispose()


def say(page, text, answer):
    page.fill("#sim-text", text)
    page.press("#sim-text", "Enter")
    page.locator("#sim-log .from-bot", has_text=answer).last.wait_for(timeout=15_000)


def click(page, title, answer):
    """Tap the last bot message's button `title`; wait for the reply containing `answer`."""
    page.locator(LAST_BOT).locator(".sim-choice", has_text=title).click()
    page.locator("#sim-log .from-bot", has_text=answer).last.wait_for(timeout=15_000)


def test_a_booking_goes_on_by_clicking_the_buttons(page):
    app, page = page
    say(page, "mau booking akupunktur senin depan sore", "Atas nama")
    last = page.locator(LAST_BOT)
    assert last.locator(".sim-choices.as-buttons .sim-choice").all_inner_texts() == ["Ya", "Bukan"]
    click(page, "Ya", "Keluhan apa")
    assert page.locator(LAST_BOT).locator(".sim-choice").count() == 0  # a free-text question: no buttons
    say(page, "betis kanan kedutan terus sudah seminggu", "Waktu yang masih kosong")
    offer = page.locator(LAST_BOT)
    titles = offer.locator(".sim-choice").all_inner_texts()
    assert len(titles) == 3 and all(re.fullmatch(r"Sen \d{1,2} \w{3} \d\d\.\d\d", t) for t in titles)
    assert "2. Senin" in offer.locator(".text").inner_text()  # the numbered text stays
    hour = titles[1][-5:]
    click(page, titles[1], "Mohon periksa")
    assert f"pukul {hour}" in page.locator(LAST_BOT).inner_text()
    (conversation,) = rows(app, Conversation)
    assert conversation.state["booking"]["at"] == hour.replace(".", ":")
    tapped = rows(app, Message, Message.choice_id.is_not(None))
    assert [m.choice_id for m in tapped][:1] == ["name:yes"] and tapped[-1].choice_id.startswith("slot:")
    assert tapped[-1].body == titles[1]
    assert page.locator(LAST_BOT).locator(".sim-choice").all_inner_texts() == ["Ya", "Ubah", "Batal"]
    click(page, "Ya", "permintaan")
    assert rows(app, Conversation)[0].state["booking"] is None


def test_the_menu_shows_its_topics_as_list_rows(page):
    _, page = page
    say(page, "menu", "Biaya & pembayaran")
    rows_ = page.locator(LAST_BOT).locator(".sim-choices.as-list .sim-choice")
    assert rows_.count() == 10
    click(page, "Biaya & pembayaran", "Biaya")


def test_a_chat_opened_again_shows_its_pending_buttons_and_older_ones_stay_plain(page):
    """History loaded by polling (the page opened again) shows the buttons of the question the
    conversation waits on, on its newest bot message only: the menu before it stays plain."""
    _, page = page
    say(page, "menu", "Biaya & pembayaran")
    say(page, "mau booking akupunktur senin depan sore", "Atas nama")
    number = page.input_value("#sim-number")
    page.reload()
    page.fill("#sim-name", "Budi")
    page.fill("#sim-number", number)
    page.locator("#sim-number").blur()  # "change": the simulator opens that patient's chat
    page.locator("#sim-log .from-bot", has_text="Atas nama").last.wait_for(timeout=15_000)
    assert page.locator(LAST_BOT).locator(".sim-choice").all_inner_texts() == ["Ya", "Bukan"]
    assert page.locator("#sim-log .from-bot .sim-choice").count() == 2  # the menu's rows are not offered now
    click(page, "Ya", "Keluhan apa")
