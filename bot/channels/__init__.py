"""Channels: one package per messaging platform, translating its payloads at the edge."""
