"""Query messages as domain terms: query terms, direction examples, a search's query."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from assetsearch_client._pb.assetsearch.v1 import search_pb2 as pb

from latent.errors import InvalidArgument
from latent.query.terms import Asset, Direction, Example, Image, Term, Text, Vector


def term_from_message(query: pb.QueryTerm) -> Term:
    """A query term from its message.

    Raises:
        InvalidArgument: no term kind is set.
    """
    weight = query.weight if query.HasField("weight") else 1.0
    match query.WhichOneof("kind"):
        case "text":
            return Text(query.text, weight)
        case "image":
            return Image(query.image, weight)
        case "asset_id":
            return Asset(query.asset_id, weight)
        case "vector":
            return Vector(tuple(query.vector.values), weight)
        case "direction":
            return Direction(query.direction, weight)
    raise InvalidArgument(
        "query term is empty: set one of text, image, asset_id, vector or direction"
    )


def terms_from_messages(terms: Sequence[pb.QueryTerm]) -> list[Term]:
    """The terms of a repeated QueryTerm field, in order.

    Raises:
        InvalidArgument: a term is empty.
    """
    return [term_from_message(t) for t in terms]


def search_query(request: pb.SearchRequest) -> tuple[list[Term], str]:
    """The query of a SearchRequest as terms and an expression (one of them is empty).

    Its single ``query`` becomes one term of weight 1 (the field's weight is ignored).

    Raises:
        InvalidArgument: not exactly one of query, terms and expression is set, or a
            term is empty.
    """
    given = [request.HasField("query"), len(request.terms) > 0, bool(request.expression)]
    if sum(given) != 1:
        raise InvalidArgument(
            "set exactly one of query, terms or expression (a query term is text, image, "
            "asset_id, vector or direction)"
        )
    if request.HasField("query"):
        return [replace(term_from_message(request.query), weight=1.0)], ""
    return terms_from_messages(request.terms), request.expression


def example_from_message(example: pb.DirectionExample) -> Example:
    """A direction example (text, image or asset) as a term.

    Raises:
        InvalidArgument: no kind is set.
    """
    match example.WhichOneof("kind"):
        case "text":
            return Text(example.text)
        case "image":
            return Image(example.image)
        case "asset_id":
            return Asset(example.asset_id)
    raise InvalidArgument("a direction example is empty: set text, image or asset_id")
