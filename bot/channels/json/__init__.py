"""A generic JSON webhook another system can call: the second channel, and the worked example of
docs/ARCHITECTURE.md ("how to add a channel")."""

from .webhook import init_app

__all__ = ["init_app"]
