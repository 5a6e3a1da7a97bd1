"""Reading the brands YAML file (the matching itself is `detectors.brands`)."""

from __future__ import annotations

from pathlib import Path

import yaml

from detectors.brands import BrandsConfig, BrandsFileError, parse_brands


def load_brands(path: Path) -> BrandsConfig:
    """Read and validate a brands YAML file (a clear `BrandsFileError` on a malformed one)."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise BrandsFileError(f"cannot read brands file {path}: {exc}") from exc
    return parse_brands(data)
