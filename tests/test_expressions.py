"""The expression parser: what it builds, where it reports mistakes, that no input crashes it."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from latent.errors import InvalidArgument
from latent.query.algebra import compose
from latent.query.expressions import (
    ExpressionError,
    ParsedTerm,
    parse_expression,
    terms_from_expression,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '"red circle" - "red" + 2*"blue"',
            [(1, "text", "red circle"), (-1, "text", "red"), (2, "text", "blue")],
        ),
        ("asset:42", [(1, "asset", 42)]),
        ("0.5*asset:7", [(0.5, "asset", 7)]),
        ("asset:7*3", [(3, "asset", 7)]),
        ('-"x" + image:./a.jpg', [(-1, "text", "x"), (1, "image", "./a.jpg")]),
        ('image:"my photo.png" - "red"', [(1, "image", "my photo.png"), (-1, "text", "red")]),
        ('2*(asset:1 - 0.5*"b")', [(2, "asset", 1), (-1, "text", "b")]),
        ('"say \\"hi\\""', [(1, "text", 'say "hi"')]),
        ("  'single'  ", [(1, "text", "single")]),
        ("1e-1*asset:3", [(0.1, "asset", 3)]),
    ],
)
def test_parses_to_weighted_terms(text: str, expected: list[tuple]) -> None:
    assert parse_expression(text) == [ParsedTerm(float(w), k, v) for w, k, v in expected]


@pytest.mark.parametrize(
    ("text", "column", "words"),
    [
        ("", 1, "empty"),
        ('"a" +', 6, "expected a term"),
        ('("a"', 5, "never closed"),
        ("red", 1, "unexpected 'r'"),
        ('3 "a"', 3, "expected '*'"),
        ('"abc', 1, "unterminated"),
        ("asset:x", 7, "asset id"),
        ('"a" "b"', 5, "unexpected '\"'"),
        ('"a" - "a" * x', 13, "expected a number"),
        ('0*"a"', 1, "weight 0"),
        ('""', 1, "empty text"),
        ("image:", 7, "file path"),
    ],
)
def test_mistakes_name_their_column(text: str, column: int, words: str) -> None:
    with pytest.raises(ExpressionError) as err:
        parse_expression(text)
    assert err.value.column == column
    assert str(err.value).startswith(f"column {column}: ") and words in str(err.value)


def test_deep_nesting_and_huge_inputs_are_refused() -> None:
    with pytest.raises(ExpressionError, match="nested deeper"):
        parse_expression("(" * 100 + '"a"' + ")" * 100)
    with pytest.raises(ExpressionError, match="longer than"):
        parse_expression('"a"+' * 2000 + '"a"')
    with pytest.raises(ExpressionError, match="more than 64 terms"):
        parse_expression("+".join(['"a"'] * 65))


ALPHABET = st.sampled_from(
    list("\"'()+-*.0123456789eE :asetimgdr\\/x\t\n") + ["asset:", "image:", "é", "٣", "²"]
)


@settings(max_examples=1500, deadline=None)
@given(st.lists(ALPHABET, max_size=40).map("".join) | st.text(max_size=60))
def test_no_input_crashes_the_parser(text: str) -> None:
    """Every input parses or raises ExpressionError (INVALID_ARGUMENT), nothing else."""
    try:
        terms = parse_expression(text)
    except ExpressionError as exc:
        assert 1 <= exc.column <= len(text) + 1
        return
    assert 1 <= len(terms) <= 64
    assert all(np.isfinite(t.weight) for t in terms)


def test_server_side_expressions_cannot_read_files() -> None:
    with pytest.raises(InvalidArgument, match="cannot read"):
        terms_from_expression("image:/etc/passwd")


def test_compose_is_the_normalised_weighted_sum() -> None:
    a, b = np.eye(3, dtype=np.float32)[:2]
    np.testing.assert_allclose(
        compose([a, b], [1.0, -1.0]), np.array([1, -1, 0]) / np.sqrt(2), atol=1e-6
    )
    with pytest.raises(InvalidArgument, match="cancel out"):
        compose([a, a], [1.0, -1.0])
