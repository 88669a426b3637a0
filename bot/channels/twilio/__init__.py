"""Twilio WhatsApp: the only package that imports twilio (an import contract checks it)."""

from .content import register_command as register_content
from .webhook import init_app

__all__ = ["init_app", "register_content"]
