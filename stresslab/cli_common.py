"""What the command groups (`stresslab corrections`, `stresslab collections`) share: usage errors as one line, and
running a group on its own (`python -m stresslab.corrections.cli ACTION ...`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable


class OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line `error: PROG: ...` (exit 2), not argparse's usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"error: {self.prog}: {message}", file=sys.stderr)
        raise SystemExit(2)


def group_parser(sub: argparse._SubParsersAction, name: str, help: str) -> argparse._SubParsersAction:
    """Add the command group `name` to the main parser's subparsers; returns the group's own subparsers (one
    per action, each reporting usage errors in one line)."""
    p = sub.add_parser(name, help=help)
    p.error = OneLineParser.error.__get__(p)  # type: ignore[method-assign]
    return p.add_subparsers(dest="action", required=True, parser_class=OneLineParser)


def run_group(name: str, register: Callable[[argparse._SubParsersAction], object], argv: list[str] | None) -> int:
    """Parse `name ACTION ...` with the group's register() alone and run the chosen action's func."""
    parser = OneLineParser(prog="stresslab")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args([name, *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)
