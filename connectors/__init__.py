"""Connectors fetch or receive mentions, normalise them and hand them to ``mentions.raw``."""
