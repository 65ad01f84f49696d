"""Pure: read JSONC (JSON with comments and trailing commas) with positions, and edit it minimally.

devcontainer.json files are JSONC: ``//`` and ``/* */`` comments and trailing commas, as VS Code's
``jsonc-parser`` reads them. devnix must report findings at ``line:column`` and must change one value
without touching a byte of the rest (comments, blank lines, the author's indentation), so this module
does two things:

- :func:`parse` returns a :class:`Document`: the Python value, the comments, and the span of every
  value and key by JSON path (a tuple of keys and indexes).
- :func:`set_value`, :func:`remove` and :func:`append_unique` compute text edits in the style of
  ``jsonc-parser``'s ``modify``/``applyEdits``: each edit replaces one span, and the file's own style
  (tabs or spaces and their width, LF or CRLF, trailing commas, a UTF-8 BOM) is used for new text.

Why hand-written: the libraries tried (see the project's ENVIRONMENT notes) either read JSONC wrongly
(``jsonc-parser`` 1.1.5: trailing commas, strings containing ``/*``), or read it right but give no
positions (``json-with-comments``, ``pyjson5``), or round-trip but clash with the ``json5`` module and
quote new strings with ``repr()`` (``json-five``). A scanner for this small grammar is ~200 lines.

Why two readers: values come from a fast reader that blanks comments and trailing commas without
moving any offset (two regex passes in C) and hands the rest to the stdlib's C decoder, so a 10 MB
file with a comment on every line reads in about a second and plain JSON in a third of that. The
positions, the comments and every error message come from an iterative scanner (a 10,000-level
document gets a clean error, never a ``RecursionError``), which costs about 1 µs per token and runs
only when a position is asked for or the fast reader declines (an error, or nesting past
``MAX_DEPTH``). Both build values alike (``json.loads`` for escaped strings, ``int``/``float`` for
numbers, the last duplicate key wins), and the property tests check that they accept the same texts
and read the same values.

Offsets index the text as given (a leading BOM counts as one character); lines and columns are
1-based and count code points.
"""

from __future__ import annotations

import bisect
import gc
import json
import re
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devnix.errors import DevnixError, FileSystemError

Key = str | int
JsonPath = tuple[Key, ...]

BOM = "\ufeff"
# Far deeper than any real config (they nest 5 or 6 levels); low enough that code walking the value
# recursively never hits a limit: Python's (~1000 frames), jsonschema-rs's (255 levels).
MAX_DEPTH = 128


class JsoncSyntaxError(DevnixError):
    """The text is not JSONC; ``line`` and ``column`` are 1-based, ``offset`` 0-based."""

    exit_code = 2

    def __init__(self, message: str, line: int, column: int, offset: int, where: str = "") -> None:
        at = f"{where}:{line}:{column}" if where else f"line {line}, column {column}"
        super().__init__(
            f"{at}: {message}", hint="fix the file there (`devnix validate` lists every problem it finds)"
        )
        self.reason = message
        self.line = line
        self.column = column
        self.offset = offset

    def at(self, where: str) -> JsoncSyntaxError:
        """The same error, naming the file it is in."""
        return JsoncSyntaxError(self.reason, self.line, self.column, self.offset, where)

    def located(self, where: str) -> str:
        """The error as compilers print it: ``WHERE:LINE:COL: message``."""
        return f"{where}:{self.line}:{self.column}: {self.reason}"


class JsoncEditError(DevnixError):
    """An edit cannot be made: the path goes through a value that is not an object (or array)."""

    exit_code = 2


@dataclass(frozen=True)
class Comment:
    """A comment, delimiters included, and where it starts."""

    text: str
    start: int
    end: int
    line: int
    column: int

    @property
    def is_block(self) -> bool:
        return self.text.startswith("/*")


class Node:
    """Where one value sits in the text.

    ``start``/``end`` delimit the value itself; ``key_start`` is the offset of its key's opening quote
    when it is an object member (else -1); ``comma`` is the offset of the comma after it in its
    container (else -1); ``children`` are the members or items of an object or array, in text order.
    """

    # A plain slotted class: the scanner makes one per value, and dataclass defaults cost 2x here.
    __slots__ = ("children", "comma", "end", "key_start", "kind", "path", "start")

    def __init__(self, path: JsonPath, kind: str, start: int, end: int, key_start: int) -> None:
        self.path = path
        self.kind = kind  # "object", "array", "string", "number", "boolean" or "null"
        self.start = start
        self.end = end
        self.key_start = key_start
        self.comma = -1
        self.children: list[Node] = []

    @property
    def member_start(self) -> int:
        """Where the member begins: its key if it has one, else its value."""
        return self.key_start if self.key_start >= 0 else self.start

    def __repr__(self) -> str:
        return f"Node({self.path!r}, {self.kind}, {self.start}:{self.end})"


# --- the scanner -----------------------------------------------------------------------------------

# One token per match, whitespace before it skipped. The block-comment pattern is the unrolled one:
# it cannot backtrack past the first "*/" (a lazy [\s\S]*? can, which makes many comments quadratic).
_TOKEN = re.compile(
    r"""[ \t\r\n]*(?:
      ("[^"\\\x00-\x1f]*(?:\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})[^"\\\x00-\x1f]*)*")  # 1 string
    | ([{}\[\],:])                                                              # 2 punctuation
    | (-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?)                        # 3 number (4, 5)
    | (true|false|null)                                                        # 6 literal
    | (//[^\r\n]*|/\*[^*]*\*+(?:[^/*][^*]*\*+)*/)                                # 7 comment
    | (\Z)                                                                     # 8 end
    | ()                                                                       # 9 anything else
    )""",
    re.VERBOSE,
)
_STRING, _PUNCT, _NUMBER, _LITERAL, _COMMENT, _END, _OTHER = 1, 2, 3, 6, 7, 8, 9
_LITERALS: dict[str, Any] = {"true": True, "false": False, "null": None}

# What the scanner expects next.
_VALUE, _ITEM_OR_CLOSE, _KEY_OR_CLOSE, _COLON, _COMMA_OR_CLOSE, _NOTHING = range(6)
_EXPECTED = {
    _VALUE: "a value",
    _ITEM_OR_CLOSE: "a value or ']'",
    _KEY_OR_CLOSE: "a property name in double quotes or '}'",
    _COLON: "':' after the property name",
    _NOTHING: "the end of the text",
}


# The first thing that stops a string from matching _TOKEN's string pattern.
_STRING_TROUBLE = re.compile(r'["\x00-\x1f]|\\(?:u[0-9a-fA-F]{4}|["\\/bfnrt])?')


def _string_error(text: str, start: int) -> tuple[str, int]:
    """Why the string starting at ``start`` does not match: the message and the offset to blame."""
    pos = start + 1
    while True:
        trouble = _STRING_TROUBLE.search(text, pos)
        if trouble is None or trouble.group() in "\r\n":
            return "unterminated string", start
        found, at = trouble.group(), trouble.start()
        if found == "\\":
            if text.startswith("\\u", at):
                return "invalid \\u escape in string", at
            return f"invalid escape {text[at : at + 2]!r} in string", at
        if len(found) == 1 and found < " ":
            return f"control character U+{ord(found):04X} in string (escape it)", at
        if found == '"':  # pragma: no cover - the string matched after all
            return "unterminated string", start
        pos = trouble.end()  # a good escape


class _Scanner:
    """Reads the whole text once, iteratively, into a value, the node index and the comments."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.comments: list[tuple[int, int]] = []
        self.nodes: dict[JsonPath, Node] = {}
        self.closers: list[str] = []  # the closing brackets of the open containers
        self.result: Any = None

    def fail(self, message: str, offset: int) -> JsoncSyntaxError:
        line, column = line_column(self.text, offset)
        return JsoncSyntaxError(message, line, column, offset)

    def unexpected(self, expect: int, group: int, start: int) -> JsoncSyntaxError:
        """The error for a token (or none) that cannot come where ``expect`` says."""
        text = self.text
        if group == _OTHER:
            char = text[start]
            if char == '"':
                return self.fail(*_string_error(text, start))
            if text.startswith("/*", start):
                return self.fail("unterminated /* comment", start)
            if char == "'":
                return self.fail("strings must use double quotes", start)
        found = _show(text, start)
        if expect == _COMMA_OR_CLOSE:
            closer = "}" if self.closers and self.closers[-1] == "}" else "]"
            return self.fail(f"expected ',' or '{closer}', found {found}", start)
        if expect == _NOTHING:
            return self.fail(f"unexpected {found} after the end of the value", start)
        return self.fail(f"expected {_EXPECTED[expect]}, found {found}", start)

    def document(self, start: int) -> Any:
        """Scan from ``start`` (past a BOM): the value; fills ``nodes`` and ``comments``."""
        text = self.text
        match = _TOKEN.match
        nodes = self.nodes
        # Open containers, innermost last: their nodes, their values, their closing brackets.
        open_nodes: list[Node] = []
        open_values: list[Any] = []
        closers = self.closers
        expect = _VALUE
        path: JsonPath = ()
        key_start = -1
        pos = start
        while True:
            token = match(text, pos)
            assert token is not None  # group 9 matches the empty string anywhere
            group = token.lastindex or _OTHER
            begin = token.start(group)
            pos = token.end()
            if group == _COMMENT:
                self.comments.append((begin, pos))
                continue
            char = text[begin] if group == _PUNCT else ""
            if expect <= _ITEM_OR_CLOSE:  # a value may start here
                if group in (_STRING, _NUMBER, _LITERAL):
                    word = token.group(group)
                    if group == _STRING:
                        value: Any = json.loads(word) if "\\" in word else word[1:-1]
                        node = Node(path, "string", begin, pos, key_start)
                    elif group == _NUMBER:
                        try:
                            value = float(word) if token.group(4) or token.group(5) else int(word)
                        except ValueError:  # more digits than int() accepts
                            raise self.fail("number too long", begin) from None
                        node = Node(path, "number", begin, pos, key_start)
                    else:
                        value = _LITERALS[word]
                        node = Node(path, "null" if value is None else "boolean", begin, pos, key_start)
                elif char == "{" or char == "[":
                    if len(open_nodes) >= MAX_DEPTH:
                        raise self.fail(f"nesting deeper than {MAX_DEPTH} levels", begin)
                    kind = "object" if char == "{" else "array"
                    open_nodes.append(Node(path, kind, begin, -1, key_start))
                    open_values.append({} if char == "{" else [])
                    closers.append("}" if char == "{" else "]")
                    if char == "{":
                        expect = _KEY_OR_CLOSE
                    else:
                        expect, path, key_start = _ITEM_OR_CLOSE, (*path, 0), -1
                    continue
                elif char == "]" and expect == _ITEM_OR_CLOSE:
                    node, value = self.close(open_nodes, open_values, pos)
                else:
                    raise self.unexpected(expect, group, begin)
            elif expect == _COMMA_OR_CLOSE:
                if char == ",":
                    open_nodes[-1].children[-1].comma = begin
                    parent = open_nodes[-1]
                    if parent.kind == "object":
                        expect = _KEY_OR_CLOSE
                    else:
                        expect, path, key_start = (_ITEM_OR_CLOSE, (*parent.path, len(parent.children)), -1)
                    continue
                if char and char == closers[-1]:
                    node, value = self.close(open_nodes, open_values, pos)
                else:
                    raise self.unexpected(expect, group, begin)
            elif expect == _KEY_OR_CLOSE:
                if group == _STRING:
                    word = token.group(group)
                    path = (*open_nodes[-1].path, json.loads(word) if "\\" in word else word[1:-1])
                    key_start = begin
                    expect = _COLON
                    continue
                if char == "}":
                    node, value = self.close(open_nodes, open_values, pos)
                else:
                    raise self.unexpected(expect, group, begin)
            elif expect == _COLON:
                if char != ":":
                    raise self.unexpected(expect, group, begin)
                expect = _VALUE
                continue
            else:  # _NOTHING: the value is complete
                if group != _END:
                    raise self.unexpected(expect, group, begin)
                return self.result
            # A value is complete: index it and put it in its container.
            nodes[node.path] = node
            if not open_nodes:
                self.result = value
                expect = _NOTHING
                continue
            parent = open_nodes[-1]
            parent.children.append(node)
            container = open_values[-1]
            if parent.kind == "object":
                container[node.path[-1]] = value
            else:
                container.append(value)
            expect = _COMMA_OR_CLOSE

    def close(self, open_nodes: list[Node], open_values: list[Any], end: int) -> tuple[Node, Any]:
        node = open_nodes.pop()
        node.end = end
        self.closers.pop()
        return node, open_values.pop()


def _show(text: str, pos: int) -> str:
    if pos >= len(text):
        return "the end of the text"
    char = text[pos]
    return repr(char) if char.isprintable() else f"U+{ord(char):04X}"


def _scan(text: str) -> tuple[Any, dict[JsonPath, Node], list[tuple[int, int]]]:
    scanner = _Scanner(text)
    with _collector_paused():
        value = scanner.document(1 if text.startswith(BOM) else 0)
    return value, scanner.nodes, scanner.comments


_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_INNERMOST = re.compile(r"\[\]|\{\}")


def _too_deep(skeleton: str) -> bool:
    """Whether the brackets of ``skeleton`` (strings and comments blanked) nest past MAX_DEPTH.

    Each pass deletes the innermost pairs, one level, in C; a wide file takes as many passes as it is
    deep (a few), a 10,000-deep one stops after MAX_DEPTH passes.
    """
    brackets = _NOT_BRACKET.sub("", skeleton)
    for _ in range(MAX_DEPTH):
        if not brackets:
            return False
        brackets = _INNERMOST.sub("", brackets)
    return bool(brackets)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def line_column(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of ``offset`` (a CRLF ends a line once)."""
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


# --- the document ----------------------------------------------------------------------------------


class Document:
    """A parsed JSONC text: its value, its comments, and where every value is."""

    def __init__(
        self,
        text: str,
        value: Any,
        nodes: dict[JsonPath, Node] | None,
        comment_spans: list[tuple[int, int]] | None,
    ) -> None:
        self.text = text
        self.value = value
        # Both None when the fast reader read the value: the scanner fills them in on first use.
        self._nodes = nodes
        self._comments = comment_spans
        self._line_starts: list[int] | None = None

    @property
    def bom(self) -> bool:
        return self.text.startswith(BOM)

    @property
    def nodes(self) -> dict[JsonPath, Node]:
        """Every value by JSON path (scanned on first use when the fast reader read the value)."""
        if self._nodes is None:
            _, self._nodes, self._comments = _scan(self.text)
        return self._nodes

    @property
    def comment_spans(self) -> list[tuple[int, int]]:
        """Offsets of every comment: (start, end)."""
        if self._comments is None:
            _, self._nodes, self._comments = _scan(self.text)
        return self._comments

    @property
    def comments(self) -> list[Comment]:
        """Every comment, in text order."""
        result = []
        for start, end in self.comment_spans:
            line, column = self.position(start)
            result.append(Comment(self.text[start:end], start, end, line, column))
        return result

    def node(self, path: Sequence[Key]) -> Node | None:
        return self.nodes.get(tuple(path))

    def __contains__(self, path: object) -> bool:
        return isinstance(path, tuple) and path in self.nodes

    def position(self, offset: int) -> tuple[int, int]:
        """1-based line and column of an offset."""
        if self._line_starts is None:
            self._line_starts = [0] + [m.end() for m in re.finditer("\n", self.text)]
        index = bisect.bisect_right(self._line_starts, offset) - 1
        return index + 1, offset - self._line_starts[index] + 1

    def locate(self, path: Sequence[Key]) -> tuple[int, int]:
        """Line and column to report for ``path``: its key, its value, or its nearest ancestor."""
        path = tuple(path)
        while path not in self.nodes and path:
            path = path[:-1]
        node = self.nodes.get(path)
        if node is None:  # pragma: no cover - the root always exists
            return 1, 1
        return self.position(node.member_start)

    def dumps(self) -> str:
        """The text, byte for byte: a document is never re-serialised."""
        return self.text


def parse(text: str) -> Document:
    """Read JSONC; raise :class:`JsoncSyntaxError` with the line and column of the first problem."""
    with _collector_paused():
        try:
            value = _fast_read(text[1:] if text.startswith(BOM) else text)
        except (ValueError, RecursionError):
            # Not JSONC, too deep, or something the fast reader does not vouch for: the scanner
            # reads it or says where it goes wrong.
            value, nodes, comments = _scan(text)
            return Document(text, value, nodes, comments)
    return Document(text, value, None, None)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while reading.

    Reading allocates containers and frees none, so the collector would walk the growing heap again
    and again for nothing: pausing it halves the time for a large file.
    """
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


# Strings and comments, for the fast reader. Its string pattern is laxer than _TOKEN's (any escape,
# any control character but a newline): json.loads judges the strings, which it reads as they are.
_SPLIT = re.compile(r'("[^"\\\n]*(?:\\.[^"\\\n]*)*"|//[^\r\n]*|/\*[^*]*\*+(?:[^/*][^*]*\*+)*/)')
_TRAILING_COMMA = re.compile(r",(?=[ \t\r\n]*[}\]])")
_EMPTY_THEN_COMMA = re.compile(r"[\[{][ \t\r\n]*,")
_NOT_NEWLINE = re.compile(r"[^\r\n]")


def _fast_read(body: str) -> Any:
    """The value of a JSONC text at C speed, or ValueError: the scanner then reads it or finds the error.

    Comments become blanks (their newlines kept) and trailing commas a space, so positions do not
    move, then the C decoder reads the result. It accepts nothing the scanner rejects: a string the
    split pattern misreads has a raw newline in it (that is the only way it fails to match), and the
    blanks keep that newline, where json.loads refuses it; comments are never glued to the tokens
    around them; ``[,]`` and ``{,}`` are refused here. The property tests check both readers agree.
    """
    parts = _SPLIT.split(body)
    found = parts[1::2]  # strings and comments; parts[0::2] is the text between them
    parts[1::2] = [
        m if m[0] == '"' else " " * len(m) if m[1] == "/" else _NOT_NEWLINE.sub(" ", m) for m in found
    ]
    cleaned = "".join(parts)
    # Where the structure is, strings blanked too: the commas and brackets left are the real ones.
    parts[1::2] = ['"' + " " * (len(m) - 2) + '"' if m[0] == '"' else " " * len(m) for m in found]
    skeleton = "".join(parts)
    if _EMPTY_THEN_COMMA.search(skeleton):
        raise ValueError("a comma with nothing before it")
    if _too_deep(skeleton):
        raise ValueError(f"nesting deeper than {MAX_DEPTH} levels")
    # Blank each trailing comma; the skeleton and the cleaned text have the same offsets.
    pieces, last = [], 0
    for match in _TRAILING_COMMA.finditer(skeleton):
        pieces += [cleaned[last : match.start()], " "]
        last = match.end()
    pieces.append(cleaned[last:])
    return json.loads("".join(pieces), parse_constant=_reject_constant)


def read_file(path: Path) -> str:
    """Read a UTF-8 file as text, keeping a BOM (so writing back is exact); clean errors only.

    Only regular files: opening a FIFO would wait for a writer forever, a device may never end.
    """
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            raise FileSystemError(
                f"{path} is not a regular file", hint="point devnix at a devcontainer.json file"
            )
        data = path.read_bytes()
    except OSError as error:
        raise FileSystemError(
            f"cannot read {path}: {error.strerror or error}",
            hint="check the path and its permissions",
        ) from None
    try:
        return decode(data)
    except JsoncSyntaxError as error:
        raise error.at(str(path)) from None


def parse_file(path: Path) -> Document:
    """:func:`read_file` then :func:`parse`, with errors that name the file (``path:line:column``)."""
    text = read_file(path)
    try:
        return parse(text)
    except JsoncSyntaxError as error:
        raise error.at(str(path)) from None


def decode(data: bytes) -> str:
    """Bytes to text for :func:`parse`: UTF-8 only, a NUL byte means it is not a text file."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise JsoncSyntaxError("UTF-16 text is not supported; save the file as UTF-8", 1, 1, 0)
    nul = data.find(b"\x00")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        bad = error.start
        if 0 <= nul < bad:
            bad = nul
            reason = "a NUL byte: this is not a text file"
        else:
            reason = f"invalid UTF-8 (byte 0x{data[bad]:02x})"
        prefix = data[:bad].decode("utf-8", errors="replace")
        line, column = line_column(prefix, len(prefix))
        raise JsoncSyntaxError(reason, line, column, len(prefix)) from None
    if nul >= 0:
        offset = text.index("\x00")
        line, column = line_column(text, offset)
        raise JsoncSyntaxError("a NUL byte: this is not a text file", line, column, offset)
    return text


# --- edits -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Edit:
    """Replace ``text[offset:offset + length]`` with ``content``."""

    offset: int
    length: int
    content: str


def apply_edits(text: str, edits: Sequence[Edit]) -> str:
    """Apply non-overlapping edits; insertions at the same offset keep their order."""
    parts: list[str] = []
    last = len(text)
    ordered = sorted(enumerate(edits), key=lambda pair: (pair[1].offset, pair[0]), reverse=True)
    for _, edit in ordered:
        end = edit.offset + edit.length
        if end > last:
            raise ValueError("overlapping edits")
        parts.append(text[end:last])
        parts.append(edit.content)
        last = edit.offset
    parts.append(text[:last])
    return "".join(reversed(parts))


@dataclass(frozen=True)
class Style:
    """How the file writes itself: one indentation step, its newline, trailing commas or not."""

    indent: str = "\t"
    newline: str = "\n"
    trailing_commas: bool = False


_INDENT = re.compile(r"^([ \t]+)(?=[^ \t\r\n])", re.MULTILINE)


def detect_style(document: Document) -> Style:
    """The file's indentation step (tabs, or the smallest run of spaces), newline and commas."""
    text = document.text
    indents = _INDENT.findall(text)
    if any(i.startswith("\t") for i in indents):
        indent = "\t"
    else:
        widths = [len(i) for i in indents]
        indent = " " * min(widths) if widths else "\t"  # devcontainer files are mostly tab-indented
    newline = "\r\n" if "\r\n" in text else "\n"
    trailing = any(
        node.children and node.children[-1].comma >= 0
        for node in document.nodes.values()
        if node.kind in ("object", "array")
    )
    return Style(indent, newline, trailing)


def _render(value: Any, indent: str, style: Style) -> str:
    """``value`` as JSON in the file's style; nested lines start with ``indent``."""
    try:
        rendered = json.dumps(value, indent=style.indent, ensure_ascii=False, allow_nan=False)
    except ValueError as error:
        raise JsoncEditError(f"cannot write {value!r} as JSON: {error}") from None
    return rendered.replace("\n", style.newline + indent)


def _line_indent(text: str, offset: int) -> str:
    start = text.rfind("\n", 0, offset) + 1
    match = re.match(r"[ \t]*", text[start:offset])
    return match.group() if match else ""


def _same_line(text: str, start: int, end: int) -> bool:
    return "\n" not in text[start:end]


def _insertion_edits(
    document: Document, parent: Node, key: str | None, value: Any, style: Style
) -> list[Edit]:
    """Edits that add ``value`` (under ``key`` in an object) as the last child of ``parent``."""
    text = document.text
    close = parent.end - 1
    prefix = "" if key is None else json.dumps(key, ensure_ascii=False) + ": "
    container_indent = _line_indent(text, parent.start)
    comma = "," if style.trailing_commas else ""
    if not parent.children:
        child_indent = container_indent + style.indent
        piece = prefix + _render(value, child_indent, style) + comma
        line_start = text.rfind("\n", 0, close) + 1
        if not _same_line(text, parent.start, close) and not text[line_start:close].strip(" \t"):
            # The closing bracket starts its own line: add the new line just above it.
            return [Edit(line_start, 0, child_indent + piece + style.newline)]
        return [Edit(close, 0, style.newline + child_indent + piece + style.newline + container_indent)]
    last = parent.children[-1]
    after = last.comma + 1 if last.comma >= 0 else last.end
    if _same_line(text, last.member_start, close):
        # A one-line container stays on one line: `{"a": 1}` -> `{"a": 1, "b": 2}`.
        piece = prefix + json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
        if last.comma >= 0:
            return [Edit(after, 0, f" {piece},")]
        return [Edit(last.end, 0, f", {piece}")]
    child_indent = _line_indent(text, last.member_start)
    piece = prefix + _render(value, child_indent, style) + ("," if last.comma >= 0 else "")
    edits = [] if last.comma >= 0 else [Edit(last.end, 0, ",")]
    # Put the new line after whatever ends the last child's line (a comment about it stays with it).
    pos = after
    comment_ends = dict(document.comment_spans)
    while True:
        pos = _BLANKS.match(text, pos).end()  # type: ignore[union-attr]  # matches always
        end = comment_ends.get(pos)
        if end is None or not _same_line(text, pos, end):
            break
        pos = end
    if not text.startswith(("\n", "\r\n"), pos):
        pos = after
    return [*edits, Edit(pos, 0, style.newline + child_indent + piece)]


_BLANKS = re.compile(r"[ \t]*")


def _nest(path: JsonPath, value: Any) -> Any:
    for key in reversed(path):
        if not isinstance(key, str):
            raise JsoncEditError(f"cannot create array element {key} of a missing array")
        value = {key: value}
    return value


def edits_for_set(document: Document, path: Sequence[Key], value: Any) -> list[Edit]:
    """The edits that make ``path`` hold ``value``: none when it already does."""
    path = tuple(path)
    style = detect_style(document)
    text = document.text
    node = document.node(path)
    if node is not None:
        if _same_json(_value_at(document.value, path), value):
            return []  # a minimal diff is no diff
        parent = document.node(path[:-1]) if path else None
        if parent is not None and _same_line(text, parent.start, parent.end):
            rendered = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
        else:
            rendered = _render(value, _line_indent(text, node.member_start), style)
        return [Edit(node.start, node.end - node.start, rendered)]
    # Add it under the deepest ancestor that exists, creating the objects in between.
    depth = len(path) - 1
    while depth > 0 and path[:depth] not in document.nodes:
        depth -= 1
    parent = document.nodes[path[:depth]]
    key = path[depth]
    nested = _nest(path[depth + 1 :], value)
    if parent.kind == "object" and isinstance(key, str):
        return _insertion_edits(document, parent, key, nested, style)
    if parent.kind == "array" and isinstance(key, int) and key == len(parent.children):
        return _insertion_edits(document, parent, None, nested, style)
    wanted = "an object" if isinstance(key, str) else f"an array of {key} items"
    raise JsoncEditError(
        f"cannot set {format_path(path)}: {format_path(path[:depth])} is {_a(parent.kind)}, not {wanted}"
    )


def _same_json(a: Any, b: Any) -> bool:
    """Equal as JSON text would be (``1``, ``1.0`` and ``true`` differ)."""
    try:
        return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    except (TypeError, ValueError):
        return False


def edits_for_remove(document: Document, path: Sequence[Key]) -> list[Edit]:
    """The edits that delete the member or item at ``path`` (none when it is absent)."""
    path = tuple(path)
    node = document.node(path)
    if node is None:
        return []
    if not path:
        raise JsoncEditError("cannot remove the whole document")
    text = document.text
    parent = document.nodes[path[:-1]]
    index = parent.children.index(node)
    start = node.member_start
    end = node.comma + 1 if node.comma >= 0 else node.end
    edits: list[Edit] = []
    if node.comma < 0 and index > 0:
        previous = parent.children[index - 1]
        # The new last child loses its comma, unless the file writes trailing commas.
        if not detect_style(document).trailing_commas:
            gap = (previous.comma, start)
            if any(gap[0] < c_start < gap[1] for c_start, _ in document.comment_spans):
                edits.append(Edit(previous.comma, 1, ""))
            else:
                start = previous.comma
    # Take the line with it when the member had a line of its own (and no comment follows it).
    line_start = text.rfind("\n", 0, start) + 1
    tail = re.compile(r"[ \t]*(\r?\n)?").match(text, end)
    assert tail is not None
    if text[line_start:start].strip(" \t") == "" and tail.group(1) is not None:
        start, end = line_start, tail.end()
    elif tail.group(1) is not None or text.startswith(("}", "]"), tail.end()):
        # Nothing left after it on its line: no blanks left dangling before it either.
        start = line_start + len(text[line_start:start].rstrip(" \t"))
    else:
        end = tail.end()  # `{"a": 1, "b": 2}` -> `{"b": 2}`: no stray space
    edits.append(Edit(start, end - start, ""))
    return _keep_comments(edits, document, node)


def _keep_comments(edits: list[Edit], document: Document, node: Node) -> list[Edit]:
    """Split deletions around comments that are not inside the removed value."""
    kept: list[Edit] = []
    for edit in edits:
        pieces = [(edit.offset, edit.offset + edit.length)]
        for c_start, c_end in document.comment_spans:
            if node.member_start <= c_start < node.end:
                continue
            if document.text.startswith("//", c_start):  # its newline ends it: keep that too
                c_end += 2 if document.text.startswith("\r\n", c_end) else 1
            next_pieces = []
            for start, end in pieces:
                if start <= c_start and c_end <= end:
                    next_pieces += [(start, c_start), (c_end, end)]
                else:
                    next_pieces.append((start, end))
            pieces = next_pieces
        kept += [Edit(s, e - s, edit.content if s == edit.offset else "") for s, e in pieces if e > s]
    return kept


def _value_at(value: Any, path: JsonPath) -> Any:
    for key in path:
        value = value[key]
    return value


def _a(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def format_path(path: Sequence[Key]) -> str:
    """``("runArgs", 2)`` -> ``$.runArgs[2]``; the root is ``$``."""
    parts = ["$"]
    for key in path:
        if isinstance(key, int):
            parts.append(f"[{key}]")
        elif re.fullmatch(r"[A-Za-z_$][\w$-]*", key):
            parts.append(f".{key}")
        else:
            parts.append(f"[{json.dumps(key, ensure_ascii=False)}]")
    return "".join(parts)


def set_value(text: str, path: Sequence[Key], value: Any) -> str:
    """Make ``path`` hold ``value``: replace it, or add it (and missing parent objects) last."""
    document = parse(text)
    return apply_edits(text, edits_for_set(document, path, value))


def remove(text: str, path: Sequence[Key]) -> str:
    """Delete the member or item at ``path``; the text is unchanged when it is absent."""
    document = parse(text)
    return apply_edits(text, edits_for_remove(document, path))


def replace_member(text: str, path: Sequence[Key], key: str, value: Any) -> str:
    """Put ``"key": value`` where the object member at ``path`` is (its comments and comma stay)."""
    document = parse(text)
    node = document.node(tuple(path))
    if node is None or node.key_start < 0:
        raise JsoncEditError(f"{format_path(path)} is not an object member")
    rendered = _render(value, _line_indent(text, node.member_start), detect_style(document))
    member = f"{json.dumps(key, ensure_ascii=False)}: {rendered}"
    return apply_edits(text, [Edit(node.member_start, node.end - node.member_start, member)])


def append_unique(text: str, path: Sequence[Key], item: Any) -> str:
    """Add ``item`` to the array at ``path`` unless it is there (creating the array if missing)."""
    document = parse(text)
    path = tuple(path)
    node = document.node(path)
    if node is None:
        return apply_edits(text, edits_for_set(document, path, [item]))
    current = _value_at(document.value, path)
    if not isinstance(current, list):
        raise JsoncEditError(f"cannot add to {format_path(path)}: it is {_a(node.kind)}, not an array")
    if item in current:
        return text
    return apply_edits(text, edits_for_set(document, (*path, len(current)), item))


def merge(text: str, patch: Any, path: Sequence[Key] = ()) -> str:
    """Merge ``patch`` into the value at ``path`` without deleting anything.

    Objects merge key by key (new keys are added last), arrays gain the items they lack, anything
    else is replaced; comments and untouched text stay as they are. This is what merging devnix's
    settings into a devcontainer.json someone already wrote needs.
    """
    work: list[tuple[JsonPath, Any]] = [(tuple(path), patch)]
    while work:
        where, wanted = work.pop()
        document = parse(text)
        node = document.node(where)
        current = _value_at(document.value, where) if node is not None else None
        if isinstance(wanted, dict) and isinstance(current, dict) and wanted:
            # Reversed, so that popping from the end handles the keys in the patch's order.
            work += [((*where, key), value) for key, value in reversed(list(wanted.items()))]
        elif isinstance(wanted, list) and isinstance(current, list):
            for item in wanted:
                text = append_unique(text, where, item)
        else:
            text = apply_edits(text, edits_for_set(document, where, wanted))
    return text
