"""Edges: the Twilio webhook and sender, storage. The core never imports these."""
