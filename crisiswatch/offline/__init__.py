"""Offline tools: model training, the lexicon build and NAB scoring. Never imported by the worker."""
