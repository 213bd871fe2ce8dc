"""Reading input files so that no input can hurt: a size cap, regular files only (a device or a
FIFO is refused before a byte is read, and opening one never blocks), UTF-8 checked, YAML with
bounded aliases, expansion and nesting, JSON with bounded nesting, and error messages that
quote at most a short excerpt of what was read.

Every failure is an :class:`InputError` with a one-line message naming the input (the flag or
field that gave the path) and the path.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import yaml

MAX_TEXT_BYTES = 16 * 1024 * 1024  # scenarios, run descriptions, trace CSVs
MAX_DEPTH = 64  # nesting of YAML / JSON collections
MAX_YAML_NODES = 200_000  # YAML nodes after expanding every alias
MAX_YAML_ALIASES = 1_000
EXCERPT_CHARS = 120


class InputError(ValueError):
    """An input file that cannot be read safely or is malformed; one line."""


def excerpt(text: object, limit: int = EXCERPT_CHARS) -> str:
    """``text`` (str() of it) on one line, cut to ``limit`` characters with a marker."""
    s = " ".join(str(text)[: 4 * limit].split())
    return s if len(s) <= limit else s[: limit - 3] + "..."


def read_bytes(path: str | Path, label: str, max_bytes: int = MAX_TEXT_BYTES) -> bytes:
    """The content of a regular file of at most ``max_bytes`` bytes."""
    path = Path(path)
    where = f"cannot read {label} {excerpt(path)}"
    try:
        # O_NONBLOCK: opening a FIFO with no writer would otherwise block forever
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise InputError(f"{where}: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise InputError(f"{where}: is a directory, not a file")
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"{where}: not a regular file (a device, FIFO or socket)")
        if st.st_size > max_bytes:
            raise InputError(f"{where}: {st.st_size} bytes, more than the {max_bytes} allowed")
        chunks, total = [], 0
        while total <= max_bytes:  # the size can change while reading (/proc, a growing file)
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > max_bytes:
            raise InputError(f"{where}: more than the {max_bytes} bytes allowed")
        return b"".join(chunks)
    except OSError as exc:
        raise InputError(f"{where}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def read_text(path: str | Path, label: str, max_bytes: int = MAX_TEXT_BYTES) -> str:
    """A regular UTF-8 text file of at most ``max_bytes`` bytes."""
    data = read_bytes(path, label, max_bytes)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"cannot read {label} {excerpt(path)}: not UTF-8 text (byte {exc.start}: {exc.reason})"
        ) from None


def parse_json(text: str, where: str) -> Any:
    """JSON with nesting bounded by ``MAX_DEPTH``; errors name the line and column."""
    depth = _max_bracket_depth(text)
    if depth > MAX_DEPTH:
        raise InputError(f"{where}: nested more than {MAX_DEPTH} levels deep")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{where}: not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None
    except RecursionError:
        raise InputError(f"{where}: nested too deeply") from None


def read_json(path: str | Path, label: str, max_bytes: int = MAX_TEXT_BYTES) -> Any:
    return parse_json(read_text(path, label, max_bytes), f"{label} {excerpt(path)}")


def _max_bracket_depth(text: str) -> int:
    """Deepest nesting of ``[``/``{`` outside JSON strings (linear, no recursion)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_DEPTH:
                    return deepest
        elif ch in "]}":
            depth -= 1
    return deepest


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader whose composer refuses deep nesting and too many aliases."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_YAML_ALIASES:
                raise InputError(f"more than {MAX_YAML_ALIASES} YAML aliases")
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise InputError(f"nested more than {MAX_DEPTH} levels deep")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _expanded_nodes(root: yaml.Node) -> int:
    """How many nodes the document has once every alias is expanded (memoised, so the count
    itself costs one visit per distinct node)."""
    memo: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in memo:
            continue
        kids: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            kids = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            kids = [n for pair in node.value for n in pair]
        if children_done or not kids:
            memo[id(node)] = min(1 + sum(memo[id(k)] for k in kids), 2**62)
        else:
            stack.append((node, True))
            stack.extend((k, False) for k in kids if id(k) not in memo)
    return memo[id(root)]


def parse_yaml(text: str, where: str) -> Any:
    """YAML (safe tags only) with aliases, expansion and nesting bounded."""
    loader = _BoundedLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        n = _expanded_nodes(node)
        if n > MAX_YAML_NODES:
            raise InputError(
                f"{n} YAML nodes once aliases are expanded, more than {MAX_YAML_NODES} "
                "(an alias bomb?)"
            )
        return loader.construct_document(node)
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{where}: not valid YAML: {_yaml_problem(exc)}") from None
    except RecursionError:
        raise InputError(f"{where}: nested too deeply") from None
    finally:
        loader.dispose()


def read_yaml(path: str | Path, label: str, max_bytes: int = MAX_TEXT_BYTES) -> Any:
    return parse_yaml(read_text(path, label, max_bytes), f"{label} {excerpt(path)}")


def _yaml_problem(exc: yaml.YAMLError) -> str:
    problem = getattr(exc, "problem", None)
    mark = getattr(exc, "problem_mark", None)
    if problem is None:
        return excerpt(exc)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    context = getattr(exc, "context", None)
    return excerpt(f"{problem}{where}" + (f" ({context})" if context else ""), 200)
