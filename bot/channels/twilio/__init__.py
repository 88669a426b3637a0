"""Twilio WhatsApp: the only package that imports twilio (an import contract checks it)."""
