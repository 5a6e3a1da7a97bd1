"""Benchmarks behind `crisiswatch bench ...`; each writes a markdown + JSON report to reports/."""
