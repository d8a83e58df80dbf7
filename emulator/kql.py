"""The small subset of KQL that vmss-autoheal's Resource Graph queries use, parsed and evaluated over rows.

Deliberately not a KQL engine: one table, then `where`, `project`, `extend` and `order by`/`sort by`, with
`==`, `!=`, `=~`, `!~`, `in`, `!in`, `in~`, `!in~`, `and`, `or`, `not()`, parentheses, `tostring()`,
`tolower()`, `isempty()`, `isnotempty()`, `isnull()`, `isnotnull()` and dotted access into dynamic columns.
Anything else raises `QueryError`, so a query change that leaves the subset fails loudly in tests instead
of being answered wrongly. Semantics follow the KQL reference (learn.microsoft.com/kusto/query):
`=~`/`!~`/`in~` compare case-insensitively, `==`/`in` case-sensitively; `order by` sorts descending
unless `asc` is given; a missing dynamic property is null and `tostring(null)` is the empty string.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

Row = dict[str, Any]

TABLES = ("resources", "computeresources", "resourcecontainers")
_KNOWN_OPERATORS = {
    "summarize",
    "join",
    "limit",
    "take",
    "top",
    "mv-expand",
    "mvexpand",
    "distinct",
    "count",
    "union",
    "parse",
    "project-away",
    "project-rename",
    "extend-away",
    "sample",
    "lookup",
    "as",
    "invoke",
    "render",
}


class QueryError(Exception):
    """A query the emulator cannot evaluate: `code` is ParserFailure (syntax) or EmulatorUnsupported."""

    def __init__(self, code: str, message: str, *, position: int = -1, token: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.position = position
        self.token = token


# --- tokens --------------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+|//[^\n]*)
  | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<number>\d+(?:\.\d+)?)
  | (?P<op>!in~|!in\b|in~|=~|!~|==|!=|<=|>=|[|(),.=<>\[\]!])
  | (?P<word>[A-Za-z_][A-Za-z0-9_\-]*)
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Token:
    kind: str  # string | number | op | word | end
    text: str
    position: int


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        found = _TOKEN.match(text, position)
        if found is None:
            raise QueryError("ParserFailure", f"unexpected character {text[position]!r}", position=position)
        kind = found.lastgroup or ""
        value = found.group()
        if kind == "word" and value == "in":
            kind = "op"
        if kind != "ws":
            tokens.append(Token(kind, value, position))
        position = found.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


# --- expressions ---------------------------------------------------------------------------------------

Expr = Callable[[Row], Any]


def _text(value: Any) -> str:
    """tostring(): null -> "", booleans lower-case, dynamic objects as compact JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


_FUNCTIONS: dict[str, Callable[[Any], Any]] = {
    "tostring": _text,
    "tolower": lambda v: _text(v).lower(),
    "isempty": _empty,
    "isnotempty": lambda v: not _empty(v),
    "isnull": lambda v: v is None,
    "isnotnull": lambda v: v is not None,
}


def _compare(op: str, left: Any, right: Any) -> bool:
    a, b = _text(left), _text(right)
    if op == "==":
        return a == b
    if op == "!=":
        return a != b
    if op == "=~":
        return a.lower() == b.lower()
    if op == "!~":
        return a.lower() != b.lower()
    raise AssertionError(op)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.index = 0

    # token helpers
    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def take(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def accept(self, text: str) -> bool:
        if self.current.text.lower() == text and self.current.kind in {"op", "word"}:
            self.index += 1
            return True
        return False

    def expect(self, text: str) -> Token:
        if not self.accept(text):
            raise self.fail(f"expected '{text}'")
        return self.tokens[self.index - 1]

    def fail(self, message: str) -> QueryError:
        token = self.current
        return QueryError(
            "ParserFailure", f"{message} at position {token.position}", position=token.position, token=token.text
        )

    def unsupported(self, what: str, token: Token) -> QueryError:
        return QueryError(
            "EmulatorUnsupported",
            f"{what} '{token.text}' is outside the KQL subset the emulator evaluates (see emulator/kql.py)",
            position=token.position,
            token=token.text,
        )

    # grammar
    def query(self) -> tuple[str, list[Callable[[list[Row]], list[Row]]]]:
        table_token = self.take()
        if table_token.kind != "word":
            raise QueryError("ParserFailure", "a query starts with a table name", position=table_token.position)
        table = table_token.text.lower()
        if table not in TABLES:
            raise self.unsupported("table", table_token)
        stages: list[Callable[[list[Row]], list[Row]]] = []
        while self.accept("|"):
            stages.append(self.stage())
        if self.current.kind != "end":
            raise self.fail(f"unexpected '{self.current.text}'")
        return table, stages

    def stage(self) -> Callable[[list[Row]], list[Row]]:
        token = self.take()
        name = token.text.lower()
        if token.kind != "word":
            raise QueryError("ParserFailure", "expected an operator after '|'", position=token.position)
        if name == "where":
            predicate = self.expression()
            return lambda rows: [row for row in rows if predicate(row) is True]
        if name == "project":
            columns = self.columns(allow_plain=True)
            return lambda rows: [{column: expr(row) for column, expr in columns} for row in rows]
        if name == "extend":
            columns = self.columns(allow_plain=False)
            return lambda rows: [_extend(row, columns) for row in rows]
        if name in {"order", "sort"}:
            self.expect("by")
            keys = self.sort_keys()
            return lambda rows: _sorted(rows, keys)
        if name in _KNOWN_OPERATORS or self.current.text == "-":
            raise self.unsupported("operator", token)
        raise QueryError("ParserFailure", f"unknown operator '{token.text}'", position=token.position, token=token.text)

    def columns(self, *, allow_plain: bool) -> list[tuple[str, Expr]]:
        columns: list[tuple[str, Expr]] = []
        while True:
            start = self.current
            if start.kind != "word":
                raise self.fail("expected a column name")
            if self.tokens[self.index + 1].text == "=":
                self.index += 2
                columns.append((start.text, self.expression()))
            elif allow_plain:
                self.index += 1
                if self.current.text == ".":
                    raise self.fail("a projected path needs a name (name = path)")
                columns.append((start.text, _column(start.text)))
            else:
                raise self.fail("expected name = expression")
            if not self.accept(","):
                return columns

    def sort_keys(self) -> list[tuple[Expr, bool]]:
        keys: list[tuple[Expr, bool]] = []
        while True:
            expr = self.primary()
            descending = True  # KQL's default order is descending
            if self.accept("asc"):
                descending = False
            else:
                self.accept("desc")
            keys.append((expr, descending))
            if not self.accept(","):
                return keys

    def expression(self) -> Expr:
        left = self.conjunction()
        while self.accept("or"):
            right = self.conjunction()
            left = (lambda a, b: lambda row: a(row) is True or b(row) is True)(left, right)
        return left

    def conjunction(self) -> Expr:
        left = self.comparison()
        while self.accept("and"):
            right = self.comparison()
            left = (lambda a, b: lambda row: a(row) is True and b(row) is True)(left, right)
        return left

    def comparison(self) -> Expr:
        left = self.primary()
        op = self.current.text.lower()
        if self.current.kind == "op" and op in {"==", "!=", "=~", "!~"}:
            self.index += 1
            right = self.primary()
            return lambda row: _compare(op, left(row), right(row))
        if self.current.kind == "op" and op in {"in", "!in", "in~", "!in~"}:
            self.index += 1
            self.expect("(")
            values = [self.primary()]
            while self.accept(","):
                values.append(self.primary())
            self.expect(")")
            fold = op.endswith("~")
            negate = op.startswith("!")

            def member(row: Row) -> bool:
                needle = _text(left(row))
                pool = [_text(v(row)) for v in values]
                found = needle.lower() in {p.lower() for p in pool} if fold else needle in pool
                return found != negate

            return member
        if self.current.kind == "op" and op in {"<", ">", "<=", ">="}:
            raise self.unsupported("comparison", self.current)
        return left

    def primary(self) -> Expr:
        token = self.take()
        if token.kind == "string":
            value = _unquote(token.text)
            return lambda row: value
        if token.kind == "number":
            number = float(token.text) if "." in token.text else int(token.text)
            return lambda row: number
        if token.kind == "op" and token.text == "(":
            inner = self.expression()
            self.expect(")")
            return inner
        if token.kind != "word":
            raise QueryError(
                "ParserFailure", f"unexpected '{token.text}' at position {token.position}", position=token.position
            )
        lowered = token.text.lower()
        if lowered in {"true", "false"}:
            flag = lowered == "true"
            return lambda row: flag
        if self.current.text == "(":
            self.index += 1
            if lowered == "not":
                inner = self.expression()
                self.expect(")")
                return lambda row: inner(row) is not True
            function = _FUNCTIONS.get(lowered)
            if function is None:
                raise self.unsupported("function", token)
            argument = self.expression()
            self.expect(")")
            return lambda row: function(argument(row))
        path = [token.text]
        while self.accept("."):
            part = self.take()
            if part.kind != "word":
                raise QueryError("ParserFailure", "expected a property name after '.'", position=part.position)
            path.append(part.text)
        if self.current.text == "[":
            raise self.unsupported("indexer", self.current)
        return _path(path)


def _extend(row: Row, columns: list[tuple[str, Expr]]) -> Row:
    # In place: `Query.run` callers hand over rows that belong to this query (see its docstring).
    values = [(column, expr(row)) for column, expr in columns]
    row.update(values)
    return row


def _unquote(literal: str) -> str:
    body = literal[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


def _column(name: str) -> Expr:
    return lambda row: row.get(name)


def _path(parts: list[str]) -> Expr:
    def walk(row: Row) -> Any:
        node: Any = row
        for part in parts:  # dynamic property names are case-sensitive in KQL
            if not isinstance(node, dict):
                return None
            node = node.get(part)
        return node

    return walk


def _sorted(rows: list[Row], keys: list[tuple[Expr, bool]]) -> list[Row]:
    ordered = list(rows)
    for expr, descending in reversed(keys):  # stable sorts, last key first
        ordered.sort(key=lambda row, e=expr: _text(e(row)), reverse=descending)
    return ordered


@dataclass(frozen=True)
class Query:
    table: str
    stages: tuple[Callable[[list[Row]], list[Row]], ...]
    # Lower-cased `type` the first `where` demands (`where type =~ '...'`), so the caller may skip building
    # rows of other types; the `where` still runs, so the hint can only save work, never change a result.
    type_hint: str | None = None

    def run(self, rows: Iterable[Row]) -> list[Row]:
        """Evaluate over `rows`: top-level row dicts must be the query's own (`extend` adds to them in place)."""
        result = list(rows)
        for stage in self.stages:
            result = stage(result)
        return result


def parse(text: str) -> Query:
    """Parse a query of the subset, or raise QueryError."""
    if not isinstance(text, str) or not text.strip():
        raise QueryError("ParserFailure", "the query is empty", position=0)
    table, stages = _Parser(text).query()
    return Query(table, tuple(stages), _type_hint(text))


def _type_hint(text: str) -> str | None:
    hint = _TYPE_HINT.match(text)
    if hint is None:
        return None
    # `where type =~ 'x' and a or b` may keep other types: no hint when the clause has an `or` anywhere.
    clause = re.sub(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"", "''", text[hint.end(2) + 1 :]).split("|", 1)[0]
    return None if re.search(r"\bor\b", clause, re.IGNORECASE) else hint.group(2).lower()


_TYPE_HINT = re.compile(r"^\s*\w+\s*\|\s*where\s+type\s*(=~|==)\s*'([^'\\]*)'\s*(?:$|\||and\b)", re.IGNORECASE)
