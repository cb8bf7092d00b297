"""The query expression language: ``"red circle" - "red" + 2*"blue"``, ``asset:42``, ``image:x``.

Grammar (whitespace between tokens is ignored)::

    expr    := signed (("+" | "-") product)*
    signed  := ["-"] product
    product := [NUMBER "*"] atom ["*" NUMBER]
    atom    := STRING | "asset:" INT | "image:" PATH | "dir:" NAME | "(" expr ")"
    NAME    := letters, digits, "_", "-" and "."
    STRING  := '"' ... '"' | "'" ... "'"   (backslash escapes the quote)
    PATH    := a quoted STRING, or characters up to whitespace, "+", ")" or "*"

A scalar distributes over a parenthesised group; the result is a flat list of
weighted terms. Every mistake raises ``ExpressionError`` naming its column.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from latent.errors import InvalidArgument
from latent.names import DIRECTION_NAME as NAME
from latent.query.terms import Asset, Direction, Image, Term, Text

MAX_EXPRESSION_CHARS = 4000
MAX_TERMS = 64
MAX_DEPTH = 16
_NUMBER = re.compile(r"\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?")
_INT = re.compile(r"\d+")
_PATH_END = re.compile(r"[\s+)*]")


def scan_quoted(text: str, start: int) -> tuple[str | None, int]:
    """Read the quoted string at ``text[start]`` (its quote character), backslash escapes.

    Returns:
        The unescaped value and the position after the closing quote; None and the end
        of the text when the string is not terminated.
    """
    quote, pos, out = text[start], start + 1, []
    while pos < len(text):
        char = text[pos]
        if char == "\\" and pos + 1 < len(text):
            out.append(text[pos + 1])
            pos += 2
            continue
        pos += 1
        if char == quote:
            return "".join(out), pos
        out.append(char)
    return None, pos


class ExpressionError(InvalidArgument):
    """A query expression that does not parse; the message names the column (1-based)."""

    def __init__(self, message: str, column: int) -> None:
        super().__init__(f"column {column}: {message}")
        self.column = column


@dataclass(frozen=True)
class ParsedTerm:
    """One weighted term of a parsed expression."""

    weight: float
    kind: str  # "text" | "asset" | "image" | "direction"
    value: str | int


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.depth = 0

    def fail(self, message: str, pos: int | None = None) -> ExpressionError:
        return ExpressionError(message, (self.pos if pos is None else pos) + 1)

    def skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def peek(self) -> str:
        self.skip()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def parse(self) -> list[ParsedTerm]:
        if not self.text.strip():
            raise self.fail("the expression is empty", 0)
        terms = self.expr()
        if self.peek():
            raise self.fail(f"unexpected {self.peek()!r}; expected '+', '-' or the end")
        return terms

    def expr(self) -> list[ParsedTerm]:
        sign = 1.0
        if self.peek() == "-":
            self.pos += 1
            sign = -1.0
        terms = _scaled(self.product(), sign)
        while self.peek() in ("+", "-"):
            sign = 1.0 if self.text[self.pos] == "+" else -1.0
            self.pos += 1
            terms += _scaled(self.product(), sign)
        return terms

    def product(self) -> list[ParsedTerm]:
        factor = 1.0
        if self.peek() and (self.peek().isdigit() or self.peek() == "."):
            factor = self.number()
            if self.peek() != "*":
                raise self.fail("expected '*' after a weight")
            self.pos += 1
        terms = self.atom()
        if self.peek() == "*":
            self.pos += 1
            factor *= self.number()
        return _scaled(terms, factor)

    def number(self) -> float:
        self.skip()
        match = _NUMBER.match(self.text, self.pos)
        if not match:
            raise self.fail("expected a number")
        value = float(match.group())
        if not math.isfinite(value):
            raise self.fail("the weight is not a finite number")
        self.pos = match.end()
        return value

    def atom(self) -> list[ParsedTerm]:
        char = self.peek()
        start = self.pos
        if char in ('"', "'"):
            text = self.string()
            if not text.strip():
                raise self.fail("empty text term", start)
            return [ParsedTerm(1.0, "text", text)]
        if char == "(":
            return self.group()
        if self.text.startswith("asset:", self.pos):
            self.pos += len("asset:")
            match = _INT.match(self.text, self.pos)
            if not match:
                raise self.fail("expected an asset id (digits) after 'asset:'")
            self.pos = match.end()
            return [ParsedTerm(1.0, "asset", int(match.group()))]
        if self.text.startswith("dir:", self.pos):
            self.pos += len("dir:")
            match = NAME.match(self.text, self.pos)
            if not match:
                raise self.fail("expected a direction name (letters, digits, _ - .) after 'dir:'")
            self.pos = match.end()
            return [ParsedTerm(1.0, "direction", match.group())]
        if self.text.startswith("image:", self.pos):
            self.pos += len("image:")
            return [ParsedTerm(1.0, "image", self.path())]
        if not char:
            raise self.fail("unexpected end; expected a term")
        raise self.fail(
            f"unexpected {char!r}; expected a quoted text, asset:ID, image:PATH, dir:NAME or '('"
        )

    def group(self) -> list[ParsedTerm]:
        opened = self.pos
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail(f"parentheses nested deeper than {MAX_DEPTH}")
        self.pos += 1
        terms = self.expr()
        if self.peek() != ")":
            raise self.fail(f"'(' at column {opened + 1} is never closed")
        self.pos += 1
        self.depth -= 1
        return terms

    def string(self) -> str:
        start = self.pos
        value, self.pos = scan_quoted(self.text, start)
        if value is None:
            raise self.fail("unterminated string", start)
        return value

    def path(self) -> str:
        if self.pos < len(self.text) and self.text[self.pos] in ('"', "'"):
            value = self.string()
        else:
            match = _PATH_END.search(self.text, self.pos)
            end = match.start() if match else len(self.text)
            value = self.text[self.pos : end]
            self.pos = end
        if not value:
            raise self.fail("expected a file path after 'image:'")
        return value


def _scaled(terms: list[ParsedTerm], factor: float) -> list[ParsedTerm]:
    return [ParsedTerm(t.weight * factor, t.kind, t.value) for t in terms]


def parse_expression(
    text: str, max_chars: int | None = MAX_EXPRESSION_CHARS, max_terms: int | None = MAX_TERMS
) -> list[ParsedTerm]:
    """Parse an expression into a flat list of weighted terms.

    Args:
        text: The expression.
        max_chars: The longest expression accepted; None when the caller checked it.
        max_terms: The most terms accepted; None when the caller checks the count.

    Raises:
        ExpressionError: the expression is malformed, too long or has too many terms.
    """
    if max_chars is not None and len(text) > max_chars:
        raise ExpressionError(f"the expression is longer than {max_chars} characters", 1)
    terms = _Parser(text).parse()
    if max_terms is not None and len(terms) > max_terms:
        raise ExpressionError(f"more than {max_terms} terms", 1)
    if all(t.weight == 0 for t in terms):
        raise ExpressionError("every term has weight 0; the query has no direction", 1)
    return terms


def terms_from_expression(
    text: str,
    read_image: Callable[[str], bytes] | None = None,
    max_chars: int | None = MAX_EXPRESSION_CHARS,
    max_terms: int | None = MAX_TERMS,
) -> list[Term]:
    """Parse an expression into terms; ``image:PATH`` needs ``read_image``.

    ``max_chars`` and ``max_terms`` are as for ``parse_expression``.

    Raises:
        ExpressionError: the expression is malformed, too long or has too many terms.
        InvalidArgument: it has an image term and no way to read images.
    """
    terms: list[Term] = []
    for parsed in parse_expression(text, max_chars, max_terms):
        if parsed.kind == "image" and read_image is None:
            raise InvalidArgument(
                f"image:{parsed.value} names a file the server cannot read; send the image "
                "bytes as a term instead (the CLI does this for you)"
            )
        terms.append(_term_of(parsed.kind, parsed.value, parsed.weight, read_image))
    return terms


def _term_of(
    kind: str, value: str | int, weight: float, read_image: Callable[[str], bytes] | None
) -> Term:
    match kind:
        case "text":
            return Text(str(value), weight)
        case "asset":
            return Asset(int(value), weight)
        case "direction":
            return Direction(str(value), weight)
    assert read_image is not None
    return Image(read_image(str(value)), weight)
