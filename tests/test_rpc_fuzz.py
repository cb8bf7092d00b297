"""Property: generated messages to every RPC never get UNKNOWN or INTERNAL, and the server lives.

One real server (the tiny model, a small indexed library, auth off on loopback, the
library as its only library root) receives hypothesis-generated requests for every
method of SearchService, LibraryService and JobService. The strategies are built from the
message descriptors alone: every field of its type (scalars over their whole range, with
a bias towards small and meaningful values), a random member of each oneof, nested
messages to a bounded depth, bounded repeated fields and maps; the client-streaming
UpsertAsset gets a generated sequence of request messages. Half the examples are
"plausible": fields whose name says what they hold (collection, model_spec, name, top_k,
steps, ids, dim, vectors) get in-range values and every oneof is set, so that requests get
past validation into the handlers now and then. Any status but UNKNOWN and
INTERNAL is an answer; those two are bugs (an exception the servicer did not map). After
each example the server must still say SERVING and answer a plain search.

``ASSETSEARCH_TEST_FUZZ_EXAMPLES`` sets the examples per RPC (default 7: about 150 in all).
"""

from __future__ import annotations

import io
import logging
import os
import struct
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from assetsearch_client._pb.assetsearch.v1 import search_pb2 as pb
from google.protobuf import struct_pb2, text_format, timestamp_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st
from PIL import Image

from latent.catalog import Catalog
from latent.models.encoders import Encoder, EncoderCache
from latent.settings import Settings
from tests.conftest import draw_image, write_library

EXAMPLES = int(os.environ.get("ASSETSEARCH_TEST_FUZZ_EXAMPLES", "7"))
SERVICES = ("SearchService", "LibraryService", "JobService")
METHODS: list[MethodDescriptor] = [
    m for name in SERVICES for m in pb.DESCRIPTOR.services_by_name[name].methods
]
FORBIDDEN = (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL)
CALL_TIMEOUT = 20.0
MAX_DEPTH = 3
MAX_REPEATED = 4
# The collection the liveness check searches: no generated string names it, so no
# generated DeleteCollection or DeleteAsset-by-uri can take it away.
SENTINEL = f"fuzz-sentinel-{uuid.uuid4().hex[:8]}"

STRING_HINTS = ("collection", "model_spec", "name")
BYTES_HINTS = ("vectors",)  # the other hints are integers

T = FieldDescriptor
INT_RANGES = {
    T.TYPE_INT32: (-(2**31), 2**31 - 1),
    T.TYPE_SINT32: (-(2**31), 2**31 - 1),
    T.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    T.TYPE_INT64: (-(2**63), 2**63 - 1),
    T.TYPE_SINT64: (-(2**63), 2**63 - 1),
    T.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    T.TYPE_UINT32: (0, 2**32 - 1),
    T.TYPE_FIXED32: (0, 2**32 - 1),
    T.TYPE_UINT64: (0, 2**64 - 1),
    T.TYPE_FIXED64: (0, 2**64 - 1),
}


def _png(seed: int, size: tuple[int, int] = (40, 32)) -> bytes:
    buf = io.BytesIO()
    draw_image(seed, size).save(buf, format="PNG")
    return buf.getvalue()


class Strategies:
    """Hypothesis strategies for any message of the API, from its descriptor alone.

    ``words`` and ``blobs`` are values that mean something to this server (collection
    names, expressions, filters, library paths; real and broken images), drawn beside
    arbitrary ones so that generated requests get past the first check now and then.
    """

    def __init__(
        self, words: list[str], blobs: list[bytes], dim: int, model: str, plausible: bool = False
    ) -> None:
        self.plausible = plausible  # hinted fields always set to their hint, a oneof always set
        self.text = st.one_of(st.sampled_from(words), st.text(max_size=24))
        self.bytes = st.one_of(st.sampled_from(blobs), st.binary(max_size=64))
        self.dim = dim
        # Fields whose name says what they hold get in-range values half the time, so an
        # example gets past the collection lookup and the range checks now and then.
        small = st.integers(1, 12)
        rows = st.integers(1, 4).flatmap(
            lambda n: st.lists(st.floats(-1, 1, width=32), min_size=n * dim, max_size=n * dim)
        )
        self.hints: dict[str, st.SearchStrategy[Any]] = {
            "collection": st.sampled_from(["", "default"]),
            "model_spec": st.sampled_from(["", model]),
            "name": st.sampled_from(["up", "fuzz-dir", "default", "fuzz-collection"]),
            "vectors": rows.map(lambda xs: struct.pack(f"<{len(xs)}f", *xs)),  # float32 rows
            "dim": st.just(dim),
            **dict.fromkeys(("top_k", "steps", "path_steps", "n", "max_points", "limit"), small),
            **dict.fromkeys(("asset_id", "id", "asset_ids", "ids"), small),
        }
        self._cache: dict[tuple[str, int], st.SearchStrategy[Message]] = {}

    def message(self, descriptor: Descriptor, depth: int = 0) -> st.SearchStrategy[Message]:
        """Messages of ``descriptor``: each field set or not, one member of each oneof."""
        key = (descriptor.full_name, depth)
        if key not in self._cache:
            self._cache[key] = self._build(descriptor, depth)
        return self._cache[key]

    def _build(self, descriptor: Descriptor, depth: int) -> st.SearchStrategy[Message]:
        if descriptor.full_name == "google.protobuf.Struct":
            return self._struct()
        if descriptor.full_name == "google.protobuf.Timestamp":
            return st.builds(
                timestamp_pb2.Timestamp,
                seconds=st.integers(-62135596800, 253402300799),
                nanos=st.integers(0, 999_999_999),
            )
        cls = GetMessageClass(descriptor)
        oneofs = [o for o in descriptor.oneofs if not _synthetic(o)]
        in_oneof = {f.name for o in oneofs for f in o.fields}
        plain = [f for f in descriptor.fields if f.name not in in_oneof]
        parts: dict[str, st.SearchStrategy[Any]] = {
            # Unset two times in three: a request with fewer fields set gets further.
            f.name: self.field(f, depth)
            if self.plausible and f.name in self.hints
            else st.one_of(st.none(), st.none(), self.field(f, depth))
            for f in plain
        }
        for o in oneofs:  # one member (or none), with its value
            members = [st.tuples(st.just(f.name), self.field(f, depth)) for f in o.fields]
            parts[f"oneof {o.name}"] = st.one_of(*members, *([] if self.plausible else [st.none()]))
        return st.fixed_dictionaries(parts).map(lambda values: _make(cls, values))

    def field(self, f: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
        """Values of one field: a list for a repeated field, a dict for a map."""
        generic = self._field(f, depth)
        hint = self._hint(f)
        if hint is None:
            return generic
        if f.is_repeated:
            hint = st.lists(hint, min_size=1, max_size=MAX_REPEATED)
        return hint if self.plausible else st.one_of(hint, generic)

    def _hint(self, f: FieldDescriptor) -> st.SearchStrategy[Any] | None:
        """The hint for a field of this name, if it fits the field's type."""
        hint = self.hints.get(f.name)
        if hint is None or f.message_type is not None:
            return None
        if f.type == T.TYPE_BYTES:
            return hint if f.name in BYTES_HINTS else None
        if f.type == T.TYPE_STRING:
            if f.name in BYTES_HINTS:
                return None
            return hint if f.name in STRING_HINTS else hint.map(str)  # ids as text
        if f.type in INT_RANGES and f.name not in STRING_HINTS + BYTES_HINTS:
            return hint
        return None

    def _field(self, f: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
        if f.message_type is not None and f.message_type.GetOptions().map_entry:
            key, value = (
                f.message_type.fields_by_name["key"],
                f.message_type.fields_by_name["value"],
            )
            return st.dictionaries(
                self.scalar(key, depth), self.scalar(value, depth), max_size=MAX_REPEATED
            )
        if f.is_repeated:
            one = self.scalar(f, depth)
            lists = st.lists(one, max_size=MAX_REPEATED)
            if f.type == T.TYPE_FLOAT:  # vectors: now and then exactly the model's dimension
                return st.one_of(lists, st.lists(one, min_size=self.dim, max_size=self.dim))
            return lists
        return self.scalar(f, depth)

    def scalar(self, f: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
        """Values of one (non-repeated) element of a field's type."""
        if f.type == T.TYPE_MESSAGE:
            if depth >= MAX_DEPTH:
                return st.just(GetMessageClass(f.message_type)())
            return self.message(f.message_type, depth + 1)
        if self.plausible and f.type in INT_RANGES:
            return st.integers(0, 12)
        if self.plausible and f.type in (T.TYPE_FLOAT, T.TYPE_DOUBLE):
            return st.floats(0, 1, width=32 if f.type == T.TYPE_FLOAT else 64)
        if f.type in INT_RANGES:
            lo, hi = INT_RANGES[f.type]
            return st.one_of(st.integers(max(lo, -2), min(hi, 40)), st.integers(lo, hi))
        if f.type == T.TYPE_DOUBLE:
            return st.floats()
        if f.type == T.TYPE_FLOAT:
            return st.one_of(st.floats(0, 1, width=32), st.floats(width=32))
        if f.type == T.TYPE_BOOL:
            return st.booleans()
        if f.type == T.TYPE_STRING:
            return self.text
        if f.type == T.TYPE_BYTES:
            return self.bytes
        if f.type == T.TYPE_ENUM:  # proto3 enums are open: unknown numbers too
            known = [v.number for v in f.enum_type.values]
            return st.one_of(st.sampled_from(known), st.integers(-3, 40))
        raise AssertionError(f"no strategy for {f.full_name} (type {f.type})")

    def _struct(self) -> st.SearchStrategy[Message]:
        leaves = st.one_of(
            st.none(), st.booleans(), st.floats(allow_nan=False), self.text, st.integers(-5, 5)
        )
        json = st.recursive(
            leaves,
            lambda inner: st.one_of(
                st.lists(inner, max_size=3), st.dictionaries(self.text, inner, max_size=3)
            ),
            max_leaves=8,
        )

        def make(values: dict[str, Any]) -> struct_pb2.Struct:
            out = struct_pb2.Struct()
            out.update(values)
            return out

        return st.dictionaries(self.text, json, max_size=4).map(make)

    def requests(self, method: MethodDescriptor) -> st.SearchStrategy[Any]:
        """One request, or for a client-streaming method a sequence of request messages."""
        one = self.message(method.input_type)
        if not method.client_streaming:
            return one
        # Mostly a header then chunks of one image (the shape the client sends); otherwise
        # any sequence at all.
        header = self.message(pb.UpsertAssetHeader.DESCRIPTOR)
        image = self.bytes.flatmap(lambda b: st.integers(1, max(1, len(b))).map(lambda n: (b, n)))
        shaped = st.tuples(header, image).map(
            lambda hi: [
                pb.UpsertAssetRequest(header=hi[0]),
                *(
                    pb.UpsertAssetRequest(chunk=hi[1][0][i : i + hi[1][1]])
                    for i in range(0, len(hi[1][0]), hi[1][1])
                ),
            ]
        )
        return st.one_of(shaped, st.lists(one, max_size=5))


def _synthetic(oneof: Any) -> bool:
    """A proto3 ``optional`` field's one-member oneof (named ``_FIELD``)."""
    return len(oneof.fields) == 1 and oneof.name == "_" + oneof.fields[0].name


def _make(cls: type[Message], values: dict[str, Any]) -> Message:
    """A message of ``cls`` with the drawn values (None: left unset)."""
    msg = cls()
    for name, value in values.items():
        if value is None:
            continue
        if name.startswith("oneof "):
            name, value = value
        _set(msg, msg.DESCRIPTOR.fields_by_name[name], value)
    return msg


def _set(msg: Message, f: FieldDescriptor, value: Any) -> None:
    target = getattr(msg, f.name)
    if f.message_type is not None and f.message_type.GetOptions().map_entry:
        for k, v in value.items():
            if isinstance(v, Message):
                target[k].CopyFrom(v)
            else:
                target[k] = v
    elif f.is_repeated:
        if f.type == T.TYPE_MESSAGE:
            for v in value:
                target.add().CopyFrom(v)
        else:
            target.extend(value)
    elif f.type == T.TYPE_MESSAGE:
        target.CopyFrom(value)
    else:
        setattr(msg, f.name, value)


class ServerLog(logging.Handler):
    """Keeps the server's log records with tracebacks, to show beside a failing call."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def since(self, mark: int) -> str:
        """What was logged after ``mark`` (a length of ``lines``)."""
        return "\n".join(self.lines[mark:]) or "(nothing logged)"


class Fuzzed:
    """The server under test and a generic caller of each of its methods."""

    def __init__(self, server: Any, channel: grpc.Channel, log: ServerLog, dim: int) -> None:
        self.server = server
        self.dim = dim
        self.channel = channel
        self.log = log
        self.health = health_pb2_grpc.HealthStub(channel)
        self.statuses: defaultdict[str, Counter[str]] = defaultdict(Counter)

    def call(self, method: MethodDescriptor, request: Any) -> grpc.StatusCode:
        """Call ``method`` with the request (a list for a client stream); its status."""
        path = f"/{method.containing_service.full_name}/{method.name}"
        reply = GetMessageClass(method.output_type)
        kinds = {
            (False, False): self.channel.unary_unary,
            (False, True): self.channel.unary_stream,
            (True, False): self.channel.stream_unary,
        }
        factory = kinds[(method.client_streaming, method.server_streaming)]
        rpc = factory(path, request_serializer=_serialize, response_deserializer=reply.FromString)
        try:
            answer = rpc(iter(request) if method.client_streaming else request, CALL_TIMEOUT)
            if method.server_streaming:
                for _ in answer:
                    pass
        except grpc.RpcError as exc:
            code: grpc.StatusCode = exc.code()  # type: ignore[attr-defined]
            self.statuses[method.name][code.name] += 1
            return code
        self.statuses[method.name]["OK"] += 1
        return grpc.StatusCode.OK

    def check_alive(self) -> None:
        """Health says SERVING and a plain search of the sentinel collection answers."""
        status = self.health.Check(health_pb2.HealthCheckRequest(), timeout=10).status
        assert status == health_pb2.HealthCheckResponse.SERVING
        search = self.channel.unary_unary(
            "/assetsearch.v1.SearchService/Search",
            request_serializer=_serialize,
            response_deserializer=pb.SearchResponse.FromString,
        )
        query = pb.QueryTerm(text="a red circle")
        search(pb.SearchRequest(collection=SENTINEL, query=query, top_k=3), timeout=10)


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory, encoder: Encoder) -> Iterator[Fuzzed]:
    """One server for every example: tiny model, 8 indexed images, auth off on loopback."""
    from indexer.pipeline import Indexer
    from service.server import AssetSearchServer

    tmp = tmp_path_factory.mktemp("fuzz")
    library = tmp / "library"
    write_library(library, 8)
    settings = Settings(
        data_dir=tmp / "data",
        database_url=f"sqlite:///{tmp / 'catalog.sqlite3'}",
        model=encoder.spec,
        poll_interval=0.1,
        auth="off",
        library_roots=[library],
    )
    catalog = Catalog(settings.resolved_database_url())
    for name in (settings.collection, SENTINEL):
        Indexer(catalog, lambda spec: encoder, name, encoder.spec).run([library / "set0"])
    encoders = EncoderCache()
    encoders.put(encoder)
    server = AssetSearchServer(settings, catalog, encoders)
    log = ServerLog()
    logging.getLogger().addHandler(log)
    server.start(host="127.0.0.1", port=0)
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    fuzzed = Fuzzed(server, channel, log, encoder.dim)
    try:
        yield fuzzed
    finally:
        # What the examples got, per method (-s shows it): a method answered only with
        # INVALID_ARGUMENT means its strategies never got past validation.
        for method, counts in sorted(fuzzed.statuses.items()):
            print(f"{method}: {dict(counts.most_common())}")
        channel.close()
        logging.getLogger().removeHandler(log)
        server.stop(grace=0)
        catalog.close()


def requests_for(method: MethodDescriptor, library: Path, dim: int, model: str) -> Any:
    """Requests of ``method``: anything at all, or plausible ones that get further in."""
    return st.one_of(
        strategies_for(library, dim, model).requests(method),
        strategies_for(library, dim, model, plausible=True).requests(method),
    )


def strategies_for(library: Path, dim: int, model: str, plausible: bool = False) -> Strategies:
    """The strategies, with values that mean something to this server."""
    words = [
        "",
        "default",
        "red circle",
        '"red circle" - "red" + 2*"blue"',
        "asset:1",
        "0.5*asset:2 + dir:up",
        "image:/etc/passwd",
        "(((",
        "media=image and size>=10KB and meta.tag in (red, blue)",
        "mtime>=2024-01-01",
        "up",
        str(library),
        str(library / "set1"),
        str(library / ".." / ".."),
        "../../etc",
        "/etc/passwd",
        "set2",
        str(library / "set0" / "img0000.jpg"),
        "builtin:demo",
        "external:fuzz",
        "local-dir:/nonexistent",
        "lerp",
        "slerp",
        "fuzz/1.png",
        "file:///nowhere/x.png",
    ]
    image = _png(7)
    tiny = io.BytesIO()
    Image.new("RGB", (1, 1)).save(tiny, format="PNG")
    blobs = [image, image[: len(image) // 2], b"GIF89a" + bytes(20), tiny.getvalue()]
    return Strategies(words, blobs, dim, model, plausible)


@pytest.mark.parametrize("method", METHODS, ids=lambda m: f"{m.containing_service.name}.{m.name}")
def test_no_unknown_or_internal(fuzzed: Fuzzed, method: MethodDescriptor) -> None:
    settings_ = fuzzed.server.settings
    library = Path(settings_.library_roots[0])
    requests = requests_for(method, library, fuzzed.dim, settings_.model)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        print_blob=True,
    )
    @given(request=requests)
    def examples(request: Any) -> None:
        mark = len(fuzzed.log.lines)
        status = fuzzed.call(method, request)
        if status in FORBIDDEN:
            shown = request if isinstance(request, list) else [request]
            text = "\n---\n".join(text_format.MessageToString(m, as_utf8=True) for m in shown)
            pytest.fail(
                f"{method.full_name} returned {status.name} for\n{text}\n"
                f"server log:\n{fuzzed.log.since(mark)}"
            )
        fuzzed.check_alive()

    examples()


@pytest.mark.parametrize("method", METHODS, ids=lambda m: f"{m.containing_service.name}.{m.name}")
def test_strategies_reach_every_field(method: MethodDescriptor) -> None:
    """The generic strategies can set each field of each request (a non-default value)."""
    one = strategies_for(Path("/srv/library"), 64, "builtin:demo").message(method.input_type)
    no_shrinking = settings(max_examples=500, database=None, phases=[Phase.generate])
    for f in method.input_type.fields:
        found = find(one, lambda m, f=f: f in dict(m.ListFields()), settings=no_shrinking)
        assert f in dict(found.ListFields())
