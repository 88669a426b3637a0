"""The Twilio channel's settings, read from the environment the app's Config was read from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.config import Config

API_BASE = "https://api.twilio.com"
# Twilio's WhatsApp sandbox number: where simulated patients write when no number is configured.
SANDBOX_NUMBER = "whatsapp:+14155238886"
WEBHOOK_PATH = "/webhook/whatsapp"


@dataclass(frozen=True)
class Settings:
    account_sid: str = ""
    auth_token: str = field(default="", repr=False)
    whatsapp_from: str = ""
    # Where the REST client sends (tests point it at a local recorder).
    api_base_url: str = API_BASE
    # Content API templates (bot/channels/twilio/content.py): where `content register` writes
    # their ContentSids and the app reads them (empty: instance/content_sids.json), and where
    # the Content API is (empty: Twilio's).
    content_sids_file: str = ""
    content_base_url: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        return cls(
            account_sid=env.get("TWILIO_ACCOUNT_SID", ""),
            auth_token=env.get("TWILIO_AUTH_TOKEN", ""),
            whatsapp_from=env.get("TWILIO_WHATSAPP_FROM", ""),
            api_base_url=(env.get("TWILIO_API_BASE_URL") or API_BASE).rstrip("/"),
            content_sids_file=env.get("CONTENT_SIDS_FILE", ""),
            content_base_url=env.get("TWILIO_CONTENT_BASE_URL", ""),
        )

    @property
    def can_send(self) -> bool:
        return bool(self.account_sid and self.auth_token and self.whatsapp_from)


def settings(config: Config) -> Settings:
    return Settings.from_env(config.environ)
