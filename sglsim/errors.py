"""Error types shared by every layer.

User input that cannot be used (a config value, a CLI flag, a trace row) raises
`ConfigError`, a `ValueError` whose message is one line naming the field, the
value and what is allowed. Broken internal invariants raise `RuntimeError`.
"""

from __future__ import annotations

from typing import Any, Iterable


class ConfigError(ValueError):
    """Invalid user input; the message is one line meant for the end user."""


def invalid(field: str, value: Any, allowed: str) -> ConfigError:
    """Build the standard one-line error: ``invalid <field> <value>: expected <allowed>``."""
    return ConfigError(f"invalid {field} {value!r}: expected {allowed}")


def unknown(field: str, value: Any, choices: Iterable[str]) -> ConfigError:
    """Build the error for a name that is not one of `choices`."""
    names = ", ".join(sorted(choices))
    return ConfigError(f"unknown {field} {value!r}: choose one of {names}")


def not_utf8(what: str, path: Any, exc: UnicodeDecodeError) -> ConfigError:
    """Build the error for a text file (`what` names its kind) that is not valid UTF-8."""
    return ConfigError(f"invalid {what} {path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x})")
