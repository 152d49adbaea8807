"""The ``flopex`` command line: one entry point, subcommands grow with the venue.

Subcommands are plugins. Each is a module exposing ``register(subparsers)`` which adds
an :mod:`argparse` parser and sets ``func`` (``func(args) -> int`` exit code). The
built-in ones live in ``contracts`` and ``exchange``; ``clearing`` adds its own through
the ``flopex.commands`` entry-point group in ``pyproject.toml``, so ``exchange`` never
imports ``clearing`` (the dependency arrow stays ``contracts <- exchange <- clearing``).

Every user error is a :class:`contracts.errors.FlopexError`: printed as one line
``flopex: error: ...`` on stderr with exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points

from contracts.errors import FlopexError

#: Modules in this distribution that provide subcommands, in help order.
BUILTIN_COMMAND_MODULES: tuple[str, ...] = (
    "contracts.cli",
    "exchange.cli_exchange",
    "exchange.cli_journal",
)

ENTRY_POINT_GROUP = "flopex.commands"


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line and exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise FlopexError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    """Build the full parser: built-in subcommands, then entry-point plugins."""
    parser = _Parser(
        prog="flopex",
        description="flopex — a futures exchange for AI compute.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subparsers.required = True
    for name in BUILTIN_COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue  # not built yet
            raise
        module.register(subparsers)
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            register = ep.load()
        except ModuleNotFoundError as exc:
            if exc.name == ep.module:
                continue  # declared but not built yet
            raise
        register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``flopex``; returns the process exit code (0 ok, 2 bad input)."""
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        code = args.func(args)
        return int(code or 0)
    except FlopexError as exc:
        print(f"flopex: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("flopex: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
