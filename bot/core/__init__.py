"""The dialogue core: normalizer, matcher, dialogue engine. Imports neither Flask, a channel, nor a database."""
