"""The dialogue core: normalizer, matcher, dialogue engine. Imports neither Flask nor Twilio."""
