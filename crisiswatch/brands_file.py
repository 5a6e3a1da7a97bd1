"""Reading the brands YAML file (the matching itself is `detectors.brands`), and watching it for policy changes."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import yaml

from crisiswatch.detectors.brands import BrandsConfig, BrandsFileError, parse_brands
from crisiswatch.detectors.risk import BrandPolicy

log = logging.getLogger(__name__)


def load_brands(path: Path) -> BrandsConfig:
    """Read and validate a brands YAML file (a clear `BrandsFileError` on a malformed one)."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise BrandsFileError(f"cannot read brands file {path}: {exc}") from exc
    return parse_brands(data)


def load_brand_policies(path: Path) -> dict[str, BrandPolicy]:
    """The per-brand policies of a brands file (brand id -> `BrandPolicy`; brands without one are left out)."""
    return dict(load_brands(path).policies)


class BrandsWatch:
    """Notices when the brands file changes, and hands over its per-brand policies when they are valid.

    `poll` is cheap (one ``stat``): call it before each decision. The file is read again only when its
    modification time or size changed, and a change counts only when the content did. A file that cannot
    be read or is invalid keeps the previous policies and logs one ERROR line per change of the file.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self._stamp = self._stat()
        self._digest = ""
        self.policies = self._read()  # at start an invalid file is an error, as for the enrich stage

    def _stat(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def _read(self) -> dict[str, BrandPolicy]:
        try:
            raw = self.path.read_bytes()
        except OSError as exc:
            raise BrandsFileError(f"cannot read brands file {self.path}: {exc}") from exc
        try:
            data = yaml.safe_load(raw.decode("utf-8"))
        except (UnicodeDecodeError, yaml.YAMLError) as exc:
            raise BrandsFileError(f"cannot read brands file {self.path}: {exc}") from exc
        policies = dict(parse_brands(data).policies)
        self._digest = hashlib.sha256(raw).hexdigest()
        return policies

    def poll(self) -> dict[str, BrandPolicy] | None:
        """The new per-brand policies when the file changed and is valid; ``None`` otherwise."""
        stamp = self._stat()
        if stamp == self._stamp:
            return None
        self._stamp = stamp
        previous = self._digest
        try:
            policies = self._read()
        except BrandsFileError as exc:
            log.error("brands file %s is invalid, keeping the previous policies: %s", self.path, exc)
            return None
        if self._digest == previous:
            return None  # touched, not changed
        self.policies = policies
        return policies
