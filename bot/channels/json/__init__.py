"""A generic JSON webhook another system can call: the second channel, and the worked example of
docs/ARCHITECTURE.md ("how to add a channel")."""

from bot.config import Config

from .sender import REQUIREMENT as SENDER_NEEDS
from .sender import CallbackSender
from .webhook import PREFIX as ADDRESS_SCHEME
from .webhook import Settings, init_app


def sender(config: Config) -> CallbackSender | None:
    """Sends through the callback, when one is set (with the secret that signs it)."""
    settings = Settings.from_env(config.environ)
    return CallbackSender(settings) if settings.callback_url and settings.secret else None


__all__ = ["ADDRESS_SCHEME", "SENDER_NEEDS", "init_app", "sender"]
