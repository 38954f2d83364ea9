"""YAML reading that rejects duplicate keys.

PyYAML keeps the last of two equal keys in a mapping and reports nothing, so a
scenario that sets `gpu:` twice would run the second value.
"""

from __future__ import annotations

from typing import Any

import yaml

from ..errors import ConfigError


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader whose mappings raise on a repeated key."""


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise ConfigError(f"duplicate key {key!r} at line {key_node.start_mark.line + 1}; keep one of them")
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


def load_yaml(text: str) -> Any:
    """Parse YAML like `yaml.safe_load`, raising ConfigError on a key repeated within one mapping."""
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
