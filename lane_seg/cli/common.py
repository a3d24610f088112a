"""What every `lane-seg` sub-command module shares: its parser with a worked example."""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Callable
from typing import NoReturn


class OneLineParser(argparse.ArgumentParser):
    """A usage error is one line that points to --help, not the whole usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def add_command(
    subparsers: argparse._SubParsersAction, name: str, summary: str, example: str
) -> argparse.ArgumentParser:
    """Add a sub-command whose --help ends with a worked example."""
    return subparsers.add_parser(
        name,
        help=summary,
        description=summary,
        epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def command_line(name: str, args: argparse.Namespace, register: Callable) -> str:
    """The `lane-seg NAME ...` line that reproduces `args`: the options that differ from their
    defaults (`register` is the command module's, which knows them)."""
    return shlex.join(command_argv(name, args, register))


def command_argv(name: str, args: argparse.Namespace, register: Callable) -> list[str]:
    """`command_line` as a list: ["lane-seg", NAME, options...], for a child process's argv."""
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    register(sub)
    defaults = sub.choices[name]
    repeated = {a.dest for a in defaults._actions if isinstance(a, argparse._AppendAction)}
    parts = ["lane-seg", name]
    for key, value in vars(args).items():
        if key in ("func", "command") or value is None or value is False or value == []:
            continue
        if value == defaults.get_default(key):
            continue
        flag = "--" + key.replace("_", "-")
        if value is True:
            parts.append(flag)
        elif key in repeated:  # --model a --model b
            parts += [x for v in value for x in (flag, str(v))]
        else:
            parts += [flag, *(map(str, value) if isinstance(value, list) else [str(value)])]
    return parts
