"""YAML → plain Python values plus the file:line:col of every value, rejecting duplicate keys.

PyYAML's composer keeps each node's start mark; we convert the node tree ourselves so that every value's path
(``("nodes", "fast", "with", "window")``) maps to where it was written.
"""

from pathlib import Path
from typing import Any

import yaml

from nodes.errors import SourceLocation, SpecError

Path_ = tuple[str | int, ...]


class Located:
    """A document's values and the location of each path in it."""

    def __init__(self, data: Any, locations: dict[Path_, SourceLocation], file: str):
        self.data = data
        self.locations = locations
        self.file = file

    def where(self, path: Path_) -> SourceLocation:
        """The location of ``path``, or of its longest existing prefix (the enclosing mapping)."""
        path = tuple(path)
        while path not in self.locations and path:
            path = path[:-1]
        return self.locations.get(path, SourceLocation(self.file, 1, 1))


def read_yaml(file: Path, text: str | None = None) -> Located:
    """Parse one YAML file; syntax errors and duplicate keys raise ``SpecError`` with their location."""
    name = str(file)
    if text is None:
        try:
            text = file.read_text()
        except FileNotFoundError:
            raise SpecError.at(None, f"{name}: no such spec file")
    try:
        root = _compose(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = SourceLocation(name, mark.line + 1, mark.column + 1) if mark else None
        message = f"YAML syntax error: {error.problem or error.context}"
        start = error.context_mark
        if error.problem and error.context and start is not None and start is not mark:
            # an unclosed quote or bracket is only noticed where the file ends: say where it was opened
            message += f" ({error.context} that starts at line {start.line + 1}, column {start.column + 1})"
        raise SpecError.at(where, message)
    if root is None:
        raise SpecError.at(SourceLocation(name, 1, 1), "empty spec: expected a mapping with tickloom, name, kind, nodes")
    locations: dict[Path_, SourceLocation] = {}
    data = _convert(root, (), locations, name)
    return Located(data, locations, name)


def _convert(node: yaml.Node, path: Path_, locations: dict, file: str) -> Any:
    locations[path] = SourceLocation(file, node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node)
            if isinstance(key, (dict, list)) or key is None:
                raise SpecError.at(_at(key_node, file), "a mapping key must be a plain name")
            key = str(key)
            if key in result:
                first = locations[path + (key,)]
                raise SpecError.at(
                    _at(key_node, file), f"duplicate key {key!r} (first defined at line {first.line})"
                )
            result[key] = _convert(value_node, path + (key,), locations, file)
            if not isinstance(value_node, yaml.ScalarNode):
                # errors about a whole mapping or list point at its key, errors about a scalar at the value
                locations[path + (key,)] = _at(key_node, file)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, path + (i,), locations, file) for i, item in enumerate(node.value)]
    return _scalar(node)


_CONSTRUCTOR = yaml.SafeLoader(stream="")
_FAST_LOADER = getattr(yaml, "CSafeLoader", None)


def _compose(text: str) -> yaml.Node | None:
    """Compose with libyaml when PyYAML has it (several times faster: Dagster reloads every spec on a save);
    on any error, compose again with the pure-Python loader, whose messages the errors above are built from."""
    if _FAST_LOADER is not None:
        try:
            return yaml.compose(text, Loader=_FAST_LOADER)
        except yaml.YAMLError:
            pass
    return yaml.compose(text, Loader=yaml.SafeLoader)


def _scalar(node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return _CONSTRUCTOR.construct_object(node, deep=True)
    return None


def _at(node: yaml.Node, file: str) -> SourceLocation:
    return SourceLocation(file, node.start_mark.line + 1, node.start_mark.column + 1)
