"""Klinik-bot: a WhatsApp assistant for a Jakarta clinic of Traditional Chinese Medicine."""
