"""The one exception type a user ever sees from flopex.

Every input boundary (YAML specs, the wire, the CLI, quote files, data directories)
raises :class:`FlopexError` (or a subclass) with a one-line message naming what is
wrong. The CLI turns it into ``flopex: error: <message>`` and exit code 2; anything
else escaping is a bug.
"""

from __future__ import annotations


class FlopexError(Exception):
    """A user-facing error: the message is one line and names the bad input."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        if "\n" in message:
            message = " ".join(part.strip() for part in message.splitlines() if part.strip())
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message
