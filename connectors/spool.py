"""The on-disk spool of `connectors.sink.MentionSink`: records the broker could not take yet.

A folder of segment files (``seg-00000000000000000001.spool`` …), each a sequence of length-prefixed
records, appended in order and fsynced before anything is reported durable::

    crc32 (u32) | value length (u32) | key length (i32, -1: no key) | enqueued at (f64, unix s) | key | value

all little-endian; the CRC-32 covers everything after itself. A torn or corrupt record (a crash in
the middle of a write, which was therefore never reported durable) ends the reading of its segment,
with a warning. ``head.json`` remembers how far the spool was delivered (segment and byte offset), so a
restart resumes there instead of re-sending what the broker already has.

Limits: ``max_bytes`` (the spool refuses appends past it: `full`) and ``max_age`` (records older than
that are not sent when the spool is replayed; they are counted and logged, never dropped in silence).
No pickle, nothing but bytes: the format is readable by any language.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import struct
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

HEADER = struct.Struct("<IIid")
"""crc32, value length, key length (-1 for none), enqueue time."""
_LENGTHS = struct.Struct("<Iid")
SEGMENT_BYTES = 16 << 20

Record = tuple[bytes | None, bytes, float]
"""(key, value, enqueued at): what the sink keeps for one record."""


def encode_record(key: bytes | None, value: bytes, enqueued_at: float) -> bytes:
    """One record in the spool format."""
    body = _LENGTHS.pack(len(value), -1 if key is None else len(key), enqueued_at) + (key or b"") + value
    return struct.pack("<I", zlib.crc32(body)) + body


@dataclass
class Segment:
    """One segment file: its number, size and how many records it holds."""

    number: int
    path: Path
    size: int = 0
    records: int = 0


@dataclass(frozen=True)
class Position:
    """A place in the spool: segment number and byte offset in it."""

    segment: int
    offset: int


class SpoolFull(Exception):
    """The spool has reached its size limit."""


class Spool:
    """Append-only segments of records with a delivered head; see the module docstring."""

    def __init__(self, directory: Path, *, max_bytes: int, max_age: float, segment_bytes: int = SEGMENT_BYTES):
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.max_age = max_age
        self.segment_bytes = segment_bytes
        self.segments: list[Segment] = []
        self.head = Position(0, 0)
        self.records = 0
        """Records in the spool not yet delivered (from the head on)."""
        self._more = False
        self.directory.mkdir(parents=True, exist_ok=True)
        self._load()

    # --- state -----------------------------------------------------------------------------------
    @property
    def bytes(self) -> int:
        """Bytes on disk (whole segments, delivered parts of the head segment included)."""
        return sum(s.size for s in self.segments)

    def __len__(self) -> int:
        return self.records

    def has_room(self, size: int) -> bool:
        return self.bytes + size <= self.max_bytes

    def _load(self) -> None:
        for path in sorted(self.directory.glob("seg-*.spool")):
            try:
                number = int(path.stem.split("-", 1)[1])
            except ValueError:
                continue
            self.segments.append(Segment(number, path, path.stat().st_size))
        head_file = self.directory / "head.json"
        if head_file.is_file():
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                data = json.loads(head_file.read_text())
                self.head = Position(int(data["segment"]), int(data["offset"]))
        self.segments = [s for s in self.segments if s.number >= self.head.segment]
        if not self.segments or self.segments[0].number != self.head.segment:
            self.head = Position(self.segments[0].number if self.segments else 0, 0)
        for segment in self.segments:
            start = self.head.offset if segment.number == self.head.segment else 0
            scanned = self._scan(segment, start)
            count = len(scanned)
            end = scanned[-1][1] if scanned else start
            if end < segment.size:  # a torn tail: cut it so that appends continue cleanly
                log.warning("spool %s: %d bytes after offset %d are torn; cut", segment.path, segment.size - end, end)
                with segment.path.open("r+b") as handle:
                    handle.truncate(end)
                segment.size = end
            segment.records = count
            self.records += count
        if self.records:
            log.warning("spool %s: %d records left from before are sent first", self.directory, self.records)

    # --- writing ---------------------------------------------------------------------------------
    def append(self, records: list[Record]) -> None:
        """Append records and fsync; raises `SpoolFull` (appending nothing) past ``max_bytes``."""
        if not records:
            return
        data = b"".join(encode_record(k, v, t) for k, v, t in records)
        if not self.has_room(len(data)):
            raise SpoolFull(f"spool {self.directory} is full ({self.bytes} of {self.max_bytes} bytes)")
        segment = self.segments[-1] if self.segments else None
        if segment is None or segment.size >= self.segment_bytes:
            number = (segment.number + 1) if segment else max(self.head.segment, 1)
            segment = Segment(number, self.directory / f"seg-{number:020d}.spool")
            self.segments.append(segment)
            if len(self.segments) == 1:
                self.head = Position(number, 0)
        with segment.path.open("ab") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        segment.size += len(data)
        segment.records += len(records)
        self.records += len(records)

    # --- reading ---------------------------------------------------------------------------------
    def _scan(self, segment: Segment, offset: int, window: int | None = None) -> list[tuple[Record, int]]:
        """Records of a segment from ``offset`` with the offset after each (stops at a torn record).
        With ``window``, only about that many bytes are read (the rest comes with the next call);
        ``self._more`` tells whether the scan stopped at the window's end rather than the data's."""
        out: list[tuple[Record, int]] = []
        self._more = False
        try:
            with segment.path.open("rb") as handle:
                handle.seek(offset)
                data = handle.read() if window is None else handle.read(window)
                file_size = os.fstat(handle.fileno()).st_size
        except OSError as exc:
            log.error("spool %s unreadable: %s", segment.path, exc)
            return out
        pos = 0
        while pos + HEADER.size <= len(data):
            crc, value_len, key_len, enqueued = HEADER.unpack_from(data, pos)
            end = pos + HEADER.size + max(key_len, 0) + value_len
            if end > len(data):
                if offset + end <= file_size and window is not None:
                    if not out:  # one record larger than the window: read it whole
                        return self._scan(segment, offset, end)
                    self._more = True
                    break  # the window ends inside a record: the next read starts there
                log.warning("spool %s: torn record at offset %d; the rest is skipped", segment.path, offset + pos)
                break
            if zlib.crc32(data[pos + 4 : end]) != crc:
                log.warning("spool %s: corrupt record at offset %d; the rest is skipped", segment.path, offset + pos)
                break
            body = pos + HEADER.size
            key = None if key_len < 0 else data[body : body + key_len]
            value = data[body + max(key_len, 0) : end]
            out.append(((key, value, enqueued), offset + end))
            pos = end
        return out

    def read(self, start: Position | None, max_records: int, max_bytes: int) -> tuple[list[Record], Position]:
        """Up to ``max_records`` records (about ``max_bytes``) from ``start`` (default: the head), and the
        position after them. Reading does not deliver: `release` does."""
        pos = start or self.head
        out: list[Record] = []
        size = 0
        for segment in self.segments:
            if segment.number < pos.segment:
                continue
            offset = pos.offset if segment.number == pos.segment else 0
            for record, end in self._scan(segment, offset, max(max_bytes - size, 1 << 16)):
                out.append(record)
                size += len(record[1]) + 32
                pos = Position(segment.number, end)
                if len(out) >= max_records or size >= max_bytes:
                    return out, pos
            if self._more:
                return out, pos  # the read window ended inside this segment
            pos = Position(segment.number, segment.size)  # the whole segment (a corrupt rest is skipped)
        return out, pos

    def release(self, position: Position, count: int) -> None:
        """The ``count`` records up to ``position`` were delivered: move the head, delete used segments."""
        self.records = max(0, self.records - count)
        for segment in list(self.segments):
            if segment.number < position.segment or (
                segment is not self.segments[-1] and self._used(segment, position)
            ):
                self._remove(segment)
        if self.records == 0:  # all delivered: start afresh
            for segment in list(self.segments):
                self._remove(segment)
            position = Position(position.segment + 1, 0)
        self.head = position
        self._write_head()

    @staticmethod
    def _used(segment: Segment, position: Position) -> bool:
        return segment.number == position.segment and position.offset >= segment.size

    def _remove(self, segment: Segment) -> None:
        with contextlib.suppress(FileNotFoundError):
            segment.path.unlink()
        self.segments.remove(segment)

    def _write_head(self) -> None:
        tmp = self.directory / ".head.json.tmp"
        tmp.write_text(json.dumps({"segment": self.head.segment, "offset": self.head.offset}))
        os.replace(tmp, self.directory / "head.json")

    def expired(self, record: Record, now: float | None = None) -> bool:
        """Whether a record is older than ``max_age``."""
        return (time.time() if now is None else now) - record[2] > self.max_age
