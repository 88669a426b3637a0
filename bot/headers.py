"""The X-Klinik-* headers on every webhook response: what the bot understood (channels
ignore them). The webhook writes them; live replays read them through the webhook client to check
fixtures. A module of its own, below both, so neither imports the other for a few names."""

INTENT_HEADER = "X-Klinik-Intent"
DECISION_HEADER = "X-Klinik-Decision"
SCORE_HEADER = "X-Klinik-Score"
REASON_HEADER = "X-Klinik-Reason"
ACTIONS_HEADER = "X-Klinik-Actions"
PAUSED_HEADER = "X-Klinik-Paused"
BOOKING_STEP_HEADER = "X-Klinik-Booking-Step"
