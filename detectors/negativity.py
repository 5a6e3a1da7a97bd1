"""Placeholder replaced below."""
class NegativeSpikeDetector:  # noqa
    pass
