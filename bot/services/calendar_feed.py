"""The appointment schedule as an iCalendar feed (RFC 5545), for staff to subscribe to in Google
Calendar or a phone.

A subscribed feed is fetched by the calendar's provider, so it carries no patient data: no name,
number or complaint, only the booking's number, treatment, status and a link to its case in
the console (behind the staff login).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import icalendar
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.core.schedule import Schedule
from bot.store.storage import BOOKING_CONFIRMED, BOOKING_HELD, Booking, HandoffCase

# Appointments this far back stay in the feed (a calendar keeps showing the recent past).
FEED_PAST = timedelta(days=30)


def feed(
    sessions: sessionmaker[Session], plan: Schedule, texts: dict, clinic: str, console_url: str, now: datetime
) -> bytes:
    """The held and confirmed appointments from FEED_PAST ago on, one event each."""
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//Klinik-bot//schedule//ID")
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", texts["calendar_name"].replace("{clinic}", clinic))
    calendar.add("x-wr-timezone", "Asia/Jakarta")
    query = (
        select(Booking, HandoffCase.id)
        .outerjoin(HandoffCase, HandoffCase.booking_id == Booking.id)
        .where(Booking.status.in_((BOOKING_HELD, BOOKING_CONFIRMED)), Booking.start_at >= now - FEED_PAST)
        .order_by(Booking.start_at, Booking.id)
    )
    with sessions() as session:
        for booking, case_id in session.execute(query):
            calendar.add_component(_event(booking, case_id, plan, texts, console_url, now))
    return calendar.to_ical()


def _event(
    booking: Booking, case_id: int | None, plan: Schedule, texts: dict, console_url: str, now
) -> icalendar.Event:
    treatment = plan.treatment(booking.treatment)
    end = booking.end_at or booking.start_at + timedelta(minutes=treatment.minutes)
    event = icalendar.Event()
    event.add("uid", f"booking-{booking.id}@klinik-bot")
    event.add("dtstamp", now)
    event.add("dtstart", booking.start_at)
    event.add("dtend", end)
    status = texts["calendar_statuses"][booking.status]
    event.add("summary", f"#{booking.id} {treatment.name} ({status})")
    event.add("status", "CONFIRMED" if booking.status == BOOKING_CONFIRMED else "TENTATIVE")
    if case_id is not None and console_url:
        event.add("url", f"{console_url}/staff/cases/{case_id}")
    return event
