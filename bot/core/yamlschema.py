"""Reading YAML with line numbers, so every problem in a knowledge file names its file and line.

PyYAML's composer gives a node tree where every node knows where it starts; we validate that
tree directly instead of the plain Python objects, which have lost their positions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

try:  # the C composer is much faster on large files; fall back to pure Python
    _Loader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _Loader = yaml.SafeLoader


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with a knowledge file, printable as `file:line: message`."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        if not self.line:
            return f"{self.file}: {self.message}"
        return f"{self.file}:{self.line}: {self.message}"


class Problems(list):
    """Collects problems while a file is validated, so one run reports all of them."""

    def add(self, file: str, node_or_line, message: str) -> None:
        line = node_or_line if isinstance(node_or_line, int) else node_or_line.start_mark.line + 1
        self.append(Problem(file, line, message))


def compose(path: Path, display: str, problems: Problems) -> yaml.Node | None:
    """Parse one file into a node tree; syntax errors become problems with their line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.add(display, 1, f"cannot read file: {exc}")
        return None
    try:
        return yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        # The context mark is where the broken construct starts (an unclosed bracket or
        # quote), which is where the mistake is; the problem mark is where PyYAML gave up.
        mark = exc.context_mark or exc.problem_mark
        line = mark.line + 1 if mark else 1
        what = exc.problem or "syntax error"
        if exc.context:
            what = f"{exc.context}: {what}"
        if exc.context_mark and exc.problem_mark and exc.problem_mark.line != exc.context_mark.line:
            what = f"{what} (noticed at line {exc.problem_mark.line + 1})"
        problems.add(display, line, f"invalid YAML: {what}")
    except yaml.YAMLError as exc:
        problems.add(display, 1, f"invalid YAML: {exc}")
    return None


def to_python(node: yaml.Node):
    """Plain Python values of an already-validated node."""
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_document(node)
    finally:
        loader.dispose()


class Reader:
    """Typed accessors over a node tree that record a problem instead of raising."""

    def __init__(self, file: str, problems: Problems):
        self.file = file
        self.problems = problems

    def fail(self, node, message: str) -> None:
        self.problems.add(self.file, node, message)

    def mapping(self, node, what: str, required=(), optional=()) -> dict[str, yaml.Node] | None:
        """A mapping with known keys: unknown, duplicate and missing keys are problems."""
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, f"{what} must be a mapping")
            return None
        allowed = set(required) | set(optional)
        out: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key is None:
                self.fail(key_node, f"{what}: keys must be plain words")
            elif key in out:
                self.fail(key_node, f"{what}: duplicate key '{key}'")
            elif allowed and key not in allowed:
                self.fail(key_node, f"{what}: unknown key '{key}' (allowed: {', '.join(sorted(allowed))})")
            else:
                out[key] = value_node
        for key in required:
            if key not in out:
                self.fail(node, f"{what}: missing key '{key}'")
        return out

    def string(self, node, what: str, allow_empty: bool = False) -> str | None:
        if not isinstance(node, yaml.ScalarNode) or node.tag == "tag:yaml.org,2002:null":
            self.fail(node, f"{what} must be text")
            return None
        value = str(node.value)
        if not allow_empty and not value.strip():
            self.fail(node, f"{what} is empty")
            return None
        return value

    def optional_string(self, node, what: str) -> str | None:
        """Text, or null for a value the clinic has not filled in."""
        if node is None or (isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"):
            return None
        value = self.string(node, what, allow_empty=True)
        return value.strip() or None if value is not None else None

    def number(self, node, what: str) -> float | None:
        if isinstance(node, yaml.ScalarNode) and node.tag in (
            "tag:yaml.org,2002:int",
            "tag:yaml.org,2002:float",
        ):
            try:
                return float(node.value)
            except ValueError:
                pass
        self.fail(node, f"{what} must be a number")
        return None

    def boolean(self, node, what: str) -> bool | None:
        if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:bool":
            return node.value.lower() in ("true", "yes", "on")
        self.fail(node, f"{what} must be true or false")
        return None

    def sequence(self, node, what: str) -> list[yaml.Node] | None:
        if not isinstance(node, yaml.SequenceNode):
            self.fail(node, f"{what} must be a list")
            return None
        return list(node.value)

    def strings(self, node, what: str) -> list[tuple[str, int]]:
        """A list of non-empty texts, each with its line."""
        items = self.sequence(node, what)
        out = []
        for item in items or ():
            value = self.string(item, f"{what} item")
            if value is not None:
                out.append((value, item.start_mark.line + 1))
        return out
