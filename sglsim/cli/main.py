"""The `sglsim` command line: subcommands, one-line errors, exit code 2 on bad input."""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import ConfigError


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors on one line and exits with status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"sglsim: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    from .simulate_cmd import add_simulate_parser

    parser = _Parser(prog="sglsim", description="Simulate SGLang serving clusters; every latency is also a SymPy expression.")
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"sglsim {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")
    add_simulate_parser(sub)
    for register in _optional_commands():
        register(sub)
    parser.commands = sub.choices  # subcommand parsers by name, for errors found after parsing
    return parser


def _optional_commands():
    """Subcommands that live in other modules (symbolic model, optimizer)."""
    commands = []
    try:
        from .explain_cmd import add_explain_parser
        commands.append(add_explain_parser)
    except ImportError:
        pass
    try:
        from .optimize_cmd import add_optimize_parser
        commands.append(add_optimize_parser)
    except ImportError:
        pass
    return commands


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        # Blame the subcommand, so the hint names its --help rather than the top-level one.
        command = parser.commands.get(args.command, parser)
        command.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command is None:
        parser.print_help()
        return 2
    try:
        if args.command == "simulate":
            from .simulate_cmd import run_simulate
            code = run_simulate(args)
        else:
            code = args.run(args)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        # The reader closed the pipe early (`sglsim simulate | head`): stop quietly, and point stdout
        # at /dev/null so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except ConfigError as err:
        sys.stderr.write(f"sglsim: error: {err}\n")
        return 2
    except MemoryError as err:
        sys.stderr.write(f"sglsim: error: out of memory ({err}); simulate fewer requests (--num-requests) "
                         "or a shorter trace\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("sglsim: interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
