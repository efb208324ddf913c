"""A file that is not valid TOML, said in plain words: the line, the column and what is wrong.

tomllib says ``Cannot overwrite a value (at line 12, column 27)``; a user needs to read
``line 12, column 1: [server] cursor_secret: set twice (first on line 4): keep one``. Example::

    >>> text = '[server]\\ncursor_secret = "a"\\ncursor_secret = "b"\\n'
    >>> try:
    ...     tomllib.loads(text)
    ... except tomllib.TOMLDecodeError as exc:
    ...     print(describe(text, exc))
    line 3, column 1: [server] cursor_secret: set twice (first on line 2): keep one of them

A place in the file is named as everywhere in the configuration's messages: ``[server] port``,
``[auth.jwt] secret``, ``[[sources]] #2 (joptic) base_url`` (:func:`entry_label`).
"""

from __future__ import annotations

import re
import tomllib

__all__ = ["describe", "entry_label"]

_AT = re.compile(r"^(?P<what>.*) \(at (?:line (?P<line>\d+), column (?P<column>\d+)|end of "
                 r"document)\)$", re.DOTALL)
_HEADER = re.compile(r"^\s*(?P<open>\[\[?)\s*(?P<name>[^\]#]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(r"""^\s*(?P<key>(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')"""
                  r"""(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*=(?P<value>.*)$""")
_BARE_WORD = re.compile(r"^[A-Za-z_][\w.-]*$")

# tomllib's words (the start of its message) -> the project's.
_PLAIN = {
    "Expected newline or end of document after a statement":
        "something follows the value (one key = value per line; a comment starts with #)",
    "Unclosed array": "a list [ … ] is not closed: a ']', or a ',' between items, is missing",
    "Unclosed inline table": "an inline table { … } is not closed: it closes on the same "
                             "line, with ',' between its items and none after the last",
    "Expected ']' at the end of a table declaration": "a [table] header needs its closing ]",
    "Expected ']]' at the end of an array declaration": "a [[table]] header needs its "
                                                         "closing ]]",
    "Expected '=' after a key in a key/value pair": "a key needs = and a value (a key with "
                                                    "spaces needs quotes)",
    "Invalid statement": "neither key = value nor a [table] header",
    "Invalid initial character for a key part": "a key is a bare word (letters, digits, _ "
                                                "and -) or in quotes",
    "Unterminated string": "a string is not closed: it needs its closing quotes",
    'Expected "\'"': "a string is not closed: it needs its closing quote",
    "Unescaped '\\' in a string": "a \\ in a \"…\" string starts an escape: write \\\\, or "
                                  "use a '…' string, which has no escapes",
    "Invalid hex value": "a \\u or \\U escape needs hex digits",
    "Escaped character is not a Unicode scalar value": "a \\u or \\U escape names no "
                                                       "character",
    "Invalid date or datetime": "not a valid date or time",
}


def entry_label(table: str, number: int, name: object = None) -> str:
    """An entry of an array of tables: ``[[sources]] #2 (joptic)``, counted from 1."""
    label = f"[[{table}]] #{number}"
    return f"{label} ({name})" if isinstance(name, str) and name else label


def describe(text: str, exc: tomllib.TOMLDecodeError) -> str:
    """``line L, column C: [where] key: what is wrong`` for tomllib's error over ``text``."""
    match = _AT.match(str(exc))
    if match is None:  # not the shape this tomllib version writes
        return str(exc)
    lines = text.splitlines()
    what = match.group("what")
    if match.group("line"):
        line, column = int(match.group("line")), int(match.group("column"))
    else:  # at the end: name the line where the statement that never ended starts
        line = _statement_start(lines, len(lines))
        column = _value_column(lines[line - 1]) if line <= len(lines) else 1
    if what.startswith("Unescaped") and 0 < line <= len(lines):  # at the \, not after it
        column = lines[line - 1].rfind("\\", 0, column) + 1 or column
    if what == "Cannot overwrite a value" or what.startswith("Cannot declare "):
        line = _statement_start(lines, line)
        return _twice(lines, line)
    if what.startswith("Duplicate inline table key "):
        key = what.removeprefix("Duplicate inline table key ").strip("'\"")
        statement = _KEY.match(lines[line - 1]) if 0 < line <= len(lines) else None
        holder = _keys(statement.group("key")) if statement else ()
        return _at(line, column, _where(lines, line, holder),
                   f"{key} is set twice in one inline table")
    if what.startswith(("Cannot redefine namespace", "Cannot mutate immutable namespace")):
        return _at(line, column, _where(lines, line, ()),
                   "this table was already defined above (as a value, an inline table or "
                   "by dotted keys): define each table in one place")
    return _at(line, column, "", _plain(what, lines, line, column, bool(match.group("line"))))


def _plain(what: str, lines: list[str], line: int, column: int, located: bool) -> str:
    source = lines[line - 1] if 0 < line <= len(lines) else ""
    value = source[column - 1:].split("#", 1)[0].strip()
    if what in ("Invalid value", "Unclosed array") and not located and "[" in source:
        return _PLAIN["Unclosed array"]
    start = _statement_start(lines, line) if located else line
    if what == "Invalid value" and start < line and "[" in lines[start - 1]:
        return f"the list [ … ] of line {start} is not closed: a ']' is missing"
    if what == "Invalid value":
        if value.casefold() in ("true", "false"):
            return f"write {value.casefold()}: TOML's booleans are lowercase"
        if not value:
            return "a value is missing after ="
        if _BARE_WORD.match(value):
            return f'a string needs quotes: "{value}"'
        return ("not a value: a string is in quotes (\"…\"), a boolean is true or false, a "
                "list is [ … ]")
    if what.startswith("Illegal character "):
        if what.endswith("'\\n'"):
            return "a string is not closed on its line: it needs its closing quote"
        return f"the character {what.removeprefix('Illegal character ')} is not allowed here"
    if what.startswith("Found invalid character "):
        return f"the character {what.removeprefix('Found invalid character ')} is not " \
               "allowed here"
    for words, plain in _PLAIN.items():
        if what.startswith(words):
            return plain
    return what[:1].lower() + what[1:]


def _twice(lines: list[str], line: int) -> str:
    """A key set twice, a table declared twice, or a table over a value."""
    source = lines[line - 1] if 0 < line <= len(lines) else ""
    header = _HEADER.match(source)
    if header is not None:
        name, now = _keys(header.group("name")), header.group("open")
        label = f"{now}{'.'.join(name)}{now.replace('[', ']')}"
        for number, other in _numbered(lines, 1, line - 1):
            found = _HEADER.match(other)
            if found is None or _keys(found.group("name")) != name:
                continue
            table = f"[{'.'.join(name)}]"
            if found.group("open") == now:
                what = f"declared twice (first on line {number}): put its keys under one {label}"
            elif now == "[":
                what = f"an array of tables since line {number}: start each entry with [{table}]"
            else:
                what = f"a table since line {number}: an array of tables starts each entry " \
                       f"with [{table}]"
            return _at(line, _indent(source), label, what)
        return _at(line, _indent(source), label, "that name already holds a value above")
    key_match = _KEY.match(source)
    if key_match is None:
        return _at(line, _indent(source), "", "a value is set twice")
    key = _keys(key_match.group("key"))
    start = _table_start(lines, line)
    where = _where(lines, line, key)
    for number, other in _numbered(lines, start + 1, line - 1):
        found = _KEY.match(other)
        if found is not None and _keys(found.group("key")) == key:
            return _at(line, _indent(source), where,
                       f"set twice (first on line {number}): keep one of them")
    return _at(line, _indent(source), where, "a table of that name was already defined: set "
                                             "its keys in one place")


def _at(line: int, column: int, where: str, what: str) -> str:
    return f"line {line}, column {column}: {where}: {what}" if where else \
        f"line {line}, column {column}: {what}"


def _where(lines: list[str], line: int, key: tuple[str, ...]) -> str:
    """``[table] key`` (``[[table]] #n (name) key``; a key of no table: the key alone)."""
    start = _table_start(lines, line)
    dotted = ".".join(key)
    if start == 0:
        return dotted
    header = _HEADER.match(lines[start - 1])
    assert header is not None
    name = _keys(header.group("name"))
    if header.group("open") == "[":
        table = f"[{'.'.join(name)}]"
    else:
        number = sum(1 for _, other in _numbered(lines, 1, start)
                     if (found := _HEADER.match(other)) and found.group("open") == "[["
                     and _keys(found.group("name")) == name)
        table = entry_label(".".join(name), number, _entry_name(lines, start))
    return f"{table} {dotted}" if dotted else table


def _entry_name(lines: list[str], start: int) -> str | None:
    """The ``name = "…"`` of the table whose header is on line ``start``."""
    for _, source in _numbered(lines, start + 1, len(lines)):
        if _HEADER.match(source):
            return None
        found = _KEY.match(source)
        if found is not None and _keys(found.group("key")) == ("name",):
            try:
                value = tomllib.loads(source.strip()).get("name")
            except tomllib.TOMLDecodeError:
                return None
            return value if isinstance(value, str) else None
    return None


def _table_start(lines: list[str], line: int) -> int:
    """The line of the header the statement on ``line`` is under (0: no header)."""
    for number in range(line - 1, 0, -1):
        if _HEADER.match(lines[number - 1]):
            return number
    return 0


def _statement_start(lines: list[str], line: int) -> int:
    """The first line of the statement that failed on ``line``: the lines before it parse."""
    for before in range(min(line, len(lines)) - 1, -1, -1):
        try:
            tomllib.loads("\n".join(lines[:before]))
        except tomllib.TOMLDecodeError:
            continue
        return before + 1
    return 1


def _keys(text: str) -> tuple[str, ...]:
    """A (dotted, maybe quoted) key as its parts, as TOML reads it."""
    try:
        found: object = tomllib.loads(f"{text} = 0")
    except tomllib.TOMLDecodeError:
        return (text.strip(),)
    parts: list[str] = []
    while isinstance(found, dict) and len(found) == 1:
        (part, found), = found.items()
        parts.append(part)
    return tuple(parts)


def _numbered(lines: list[str], first: int, last: int) -> list[tuple[int, str]]:
    """Lines ``first``..``last`` (counted from 1) with their numbers."""
    return [(number, lines[number - 1]) for number in range(max(first, 1),
                                                             min(last, len(lines)) + 1)]


def _indent(source: str) -> int:
    return len(source) - len(source.lstrip()) + 1


def _value_column(source: str) -> int:
    found = _KEY.match(source)
    if found is None:
        return _indent(source)
    value = found.group("value")
    return found.start("value") + len(value) - len(value.lstrip()) + 1
