"""``crisiswatch users hash``: the Argon2id hash of a password for ``CRISISWATCH_WEB_USERS``.

The password is read from a hidden prompt (asked twice) on a terminal, or as the first line of stdin
when piped (``pass show crisiswatch/maria | crisiswatch users hash maria``); never from the command line,
where it would land in the shell history and the process list.
"""

from __future__ import annotations

import getpass
import re
import sys

import typer

from crisiswatch.web.auth import RESERVED_USERS, USER_PATTERN, hash_password

MIN_PASSWORD_LENGTH = 12


def read_password() -> str:
    """The new password: hidden prompt twice on a terminal, else one line of stdin."""
    if sys.stdin.isatty():
        first = getpass.getpass("New password: ")
        if getpass.getpass("Again: ") != first:
            raise ValueError("the two passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def hash_command(user: str | None) -> str:
    """Print ``user:<hash>`` (or the hash alone without a user) and return it."""
    if user is not None and (not re.fullmatch(USER_PATTERN, user) or user in RESERVED_USERS):
        typer.echo(f"error: invalid user name {user!r}", err=True)
        raise typer.Exit(1)
    try:
        password = read_password()
    except (ValueError, EOFError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    if len(password) < MIN_PASSWORD_LENGTH:
        typer.echo(f"error: use a password of at least {MIN_PASSWORD_LENGTH} characters", err=True)
        raise typer.Exit(1)
    hashed = hash_password(password)
    line = f"{user}:{hashed}" if user else hashed
    typer.echo(line)
    return line
