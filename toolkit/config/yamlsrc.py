"""YAML loading that remembers where every value came from.

Validation errors must name file, line and field path; PyYAML's plain `safe_load` forgets
positions, so we compose the node tree ourselves and keep a map of path -> line.
Duplicate keys (silently last-wins in PyYAML) are reported instead of ignored.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml

from toolkit.errors import InputIssue, InvalidFile

PathKey = tuple[str | int, ...]


@dataclass
class SourceMap:
    """Lines (1-based) of keys and values, by path inside the document."""

    file: str
    key_lines: dict[PathKey, int] = field(default_factory=dict)
    value_lines: dict[PathKey, int] = field(default_factory=dict)

    def line_of(self, path: Iterable[str | int]) -> int | None:
        """Line of the deepest known part of `path` (a missing field points at its parent)."""
        parts = tuple(path)
        while True:
            if parts in self.key_lines:
                return self.key_lines[parts]
            if parts in self.value_lines:
                return self.value_lines[parts]
            if not parts:
                return None
            parts = parts[:-1]


@dataclass
class Document:
    data: Any
    source: SourceMap


def format_path(path: Iterable[str | int]) -> str:
    """('hosts', 1, 'address') -> 'hosts[1].address'."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    matches = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return matches[0] if matches else None


def _construct(node: yaml.Node, path: PathKey, smap: SourceMap, issues: list[InputIssue]) -> Any:
    smap.value_lines[path] = node.start_mark.line + 1
    if len(path) > _MAX_DEPTH:
        raise yaml.YAMLError(f"nesting deeper than {_MAX_DEPTH} levels (recursive alias?)")
    if isinstance(node, yaml.MappingNode):
        _LOADER.flatten_mapping(node)  # honour YAML merge keys (<<: *defaults)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                issues.append(
                    InputIssue(smap.file, key_node.start_mark.line + 1, format_path(path), "keys must be plain strings")
                )
                continue
            key = _scalar(key_node)
            if not isinstance(key, (str, int)):
                key = str(key)
            child = path + (key,)
            if key in out:
                issues.append(
                    InputIssue(
                        smap.file,
                        key_node.start_mark.line + 1,
                        format_path(child),
                        "duplicate key",
                        f"first defined on line {smap.key_lines[child]}",
                    )
                )
                continue
            smap.key_lines[child] = key_node.start_mark.line + 1
            out[key] = _construct(value_node, child, smap, issues)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, path + (i,), smap, issues) for i, item in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    """Resolve a scalar exactly as safe_load would (ints, bools, nulls, floats, dates)."""
    return _LOADER.construct_object(node, deep=True)


_LOADER = yaml.SafeLoader("")
#: libyaml's parser when PyYAML was built with it (about 5x faster on a 64-host inventory);
#: both give the same nodes and marks.
_COMPOSER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MAX_DEPTH = 64


def load_text(text: str, file: str) -> Document:
    """Parse YAML text into plain data plus a source map; bad YAML raises InvalidFile."""
    smap = SourceMap(file)
    try:
        nodes = list(yaml.compose_all(text, Loader=_COMPOSER))
    except yaml.reader.ReaderError as exc:  # a character YAML forbids: it has an offset, not a mark
        line: int | None = text.count("\n", 0, max(0, exc.position)) + 1
        what = f"#x{exc.character:04x}" if isinstance(exc.character, int) else repr(exc.character)
        raise InvalidFile(
            file,
            [
                InputIssue(
                    file,
                    line,
                    "",
                    f"not valid YAML: character {what} is not allowed ({exc.reason})",
                    "remove control characters (a copy-paste from a terminal?)",
                )
            ],
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise InvalidFile(file, [InputIssue(file, line, "", f"not valid YAML: {problem}")]) from None
    if len(nodes) > 1:
        raise InvalidFile(
            file, [InputIssue(file, nodes[1].start_mark.line + 1, "", "expected one YAML document, found several")]
        )
    if not nodes or nodes[0] is None:
        return Document(None, smap)
    issues: list[InputIssue] = []
    try:
        data = _construct(nodes[0], (), smap, issues)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise InvalidFile(file, [InputIssue(file, line, "", f"not valid YAML: {exc}")]) from None
    if issues:
        raise InvalidFile(file, issues)
    return Document(data, smap)


def load_file(path: str | Path) -> Document:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidFile(str(path), [InputIssue(str(path), None, "", "file not found")]) from None
    except IsADirectoryError:
        raise InvalidFile(
            str(path), [InputIssue(str(path), None, "", "is a directory, expected a YAML file")]
        ) from None
    except UnicodeDecodeError:
        raise InvalidFile(str(path), [InputIssue(str(path), None, "", "not UTF-8 text")]) from None
    except OSError as exc:
        raise InvalidFile(str(path), [InputIssue(str(path), None, "", f"cannot read: {exc.strerror}")]) from None
    return load_text(text, str(path))
