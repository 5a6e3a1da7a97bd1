"""Terminal tables that never cut an id, at any terminal width.

Every table of the CLI is built here: *id* columns (alert ids, scopes, schedule ids, topic names, and
short values such as states) are never wrapped nor cut, so they can be copied into the next command
(``crisiswatch ack <alert id>``); *text* columns (summaries, reasons) wrap, folding long words. When the
terminal is too narrow even for the ids, the table is printed wider than the terminal (which then
wraps the lines) rather than cutting an id::

    table = new_table(("alert id", ID), ("status", ID), ("summary", TEXT))
    table.add_row("globex:1772449320", "firing", "globex: 10 stories ...")
    print_table(table)
"""

from __future__ import annotations

from typing import Literal

from rich.console import Console
from rich.table import Table

ColumnKind = Literal["id", "text"]
ID: ColumnKind = "id"
TEXT: ColumnKind = "text"
TEXT_MIN_WIDTH = 12
"""A text column is never squeezed below this (or below its longest value, when shorter)."""
TEXT_WIDE = 40
"""When the table must be wider than the terminal anyway, text columns get up to this much."""


def new_table(*columns: tuple[str, ColumnKind], title: str | None = None) -> Table:
    """A table whose ``id`` columns never wrap and whose ``text`` columns wrap (folding long words)."""
    table = Table(title=title)
    for header, kind in columns:
        if kind == ID:
            table.add_column(header, no_wrap=True, overflow="ignore")
        else:
            table.add_column(header, overflow="fold")
    return table


def needed_width(table: Table, text_width: int = TEXT_MIN_WIDTH) -> int:
    """The narrowest width at which every id column shows in full and text columns get ``text_width``."""
    total = 1  # the left border
    for column in table.columns:
        cells = [str(column.header), *(str(cell) for cell in column.cells)]
        longest = max((len(line) for cell in cells for line in cell.splitlines() or [""]), default=0)
        width = longest if column.no_wrap else min(longest, text_width)
        total += width + 3  # one space of padding each side, and the border
    return total


def print_table(table: Table, console: Console | None = None) -> None:
    """Print ``table`` at the terminal's width, or wider when an id would not fit otherwise."""
    console = console or Console()
    if needed_width(table) > console.width:  # wider than the terminal anyway: let the text breathe too
        width = needed_width(table, TEXT_WIDE)
        console = Console(width=width, file=console.file, force_terminal=console.is_terminal)
    console.print(table)
