"""Twilio WhatsApp: the only package that imports twilio (an import contract checks it)."""

from .webhook import init_app

__all__ = ["init_app"]
